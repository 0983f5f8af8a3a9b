"""The sweep file, top to bottom: one strict model per block in the order a file is written, then the
root, :class:`Sweep`. The JSON Schema editors use (``sweeper schema``) and README's key tables come from
the descriptions here.

How each value is read and refused is named from :mod:`sweeper.spec.block`; the rules across keys are
:mod:`sweeper.spec.rules`; :mod:`sweeper.spec.messages` words the errors. Validation is strict ("5" and
true are not numbers) and pure: no file is opened and nothing imported (``workdir`` and the objective
are checked at launch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    WithJsonSchema,
    create_model,
    model_validator,
)

from sweeper.spec.block import (
    CONSTRAINT,
    EXACT_INT,
    GPUS,
    MAX_REPLICATES,
    MEM,
    NAMES,
    SPLIT,
    WHEN,
    Block,
    Count,
    Cpus,
    Duration,
    Gpus,
    Memory,
    OneLine,
    RangeInt,
    Scalar,
    Target,
    When,
    Whole,
    amount,
    confirm_count,
    distinct,
    factors,
    fail_all,
    identifier,
    kind,
    levels,
    lines,
    listed,
    metric_list,
    pair,
    path_only,
    plain,
    pruner_form,
    range_issues,
    replicates_form,
    rule,
    sbatch_value,
    split,
    underscores,
    variable_form,
)
from sweeper.spec.experiment import (
    EXPERIMENT_RE,
    PRUNERS,
    TIME,
    ComponentKind,
    Direction,
    Method,
    safe_experiment_name,
)
from sweeper.spec.methods import METHODS


# --------------------------------------------------------------------------------------- variables
class _Range(Block):
    when: When | None = Field(None, description=WHEN)
    log: bool = Field(False, description="Sample on a log scale (needs low > 0; not with step).")


class IntRange(_Range):
    """Whole numbers from low to high, both included."""

    bounds: Annotated[list[RangeInt], pair("int"), Field(min_length=2, max_length=2)] = Field(
        alias="int", description="[low, high], whole numbers, both included."
    )
    step: Annotated[int, Field(gt=0, le=EXACT_INT)] | None = Field(
        None, description="Only low, low+step, ..."
    )

    @model_validator(mode="after")
    def _range(self) -> IntRange:
        fail_all("IntRange", range_issues("int", self.bounds[0], self.bounds[1], self.step, log=self.log))
        return self


class FloatRange(_Range):
    """Real numbers from low to high."""

    bounds: Annotated[list[float], pair("float"), Field(min_length=2, max_length=2)] = Field(
        alias="float", description="[low, high], finite numbers."
    )
    step: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Only low, low+step, ... (what grid and bruteforce need to enumerate)."
    )

    @model_validator(mode="after")
    def _range(self) -> FloatRange:
        fail_all("FloatRange", range_issues("float", self.bounds[0], self.bounds[1], self.step, log=self.log))
        return self


class Choice(Block):
    """One of a list of values (categorical)."""

    choice: Annotated[list[Scalar], Field(min_length=1), AfterValidator(distinct)] = Field(
        description="The values to try: text, numbers or booleans, each once."
    )
    when: When | None = Field(None, description=WHEN)


class Const(Block):
    """A fixed value every trial gets (also written as the bare value)."""

    const: Scalar = Field(description="The value.")
    when: When | None = Field(None, description=WHEN)


VariableBody = Annotated[
    Annotated[Choice, Tag("@choice")]
    | Annotated[IntRange, Tag("@int")]
    | Annotated[FloatRange, Tag("@float")]
    | Annotated[Const, Tag("@const")]
    | Annotated[Scalar, Tag("@value")],
    Discriminator(
        variable_form,
        custom_error_type="variable_form",
        custom_error_message="needs exactly one of choice, int, float, const",
    ),
]


def conditional(body: Any) -> bool:
    return bool(getattr(body, "when", None))


# ----------------------------------------------------------------------------------- metrics, search
Metrics = Annotated[
    dict[Annotated[str, identifier("metric")], Direction],
    BeforeValidator(metric_list, json_schema_input_type=list[dict[str, Direction]] | dict[str, Direction]),
    Field(min_length=1),
]


class Search(Block):
    """How the variable space is searched."""

    method: Method = Field(
        "tpe",
        description=", ".join(f"`{name}` ({info.about})" for name, info in METHODS.items())
        + "; default `tpe`.",
    )
    trials: Annotated[int, Field(ge=1, le=10**9)] | None = Field(
        None, description="The budget (trials, not runs); required except for grid and bruteforce."
    )
    seed: Annotated[int, Field(ge=0, lt=2**32)] = Field(
        0, description="Seeds the sampler and the replicate seeds (default 0; 0 to 2**32 - 1)."
    )
    deterministic: bool = Field(
        False,
        description="Adaptive methods give the same trials on any number of workers "
        "(README: *Reproducibility*).",
    )
    concurrency: Annotated[int, Field(ge=1, le=10_000)] = Field(
        4,
        description="Trials in flight when deterministic (default 4): fixed by the file, not by the cluster.",
    )


# -------------------------------------------------------------------------------------- replicates
class Racing(Block):
    """Adaptive replicates: every trial starts with min, contenders grow up to max."""

    min: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] = Field(description="Replicates every trial gets.")
    max: Annotated[int, Field(ge=1, le=MAX_REPLICATES)] = Field(
        description="Replicates a contender can reach."
    )

    @model_validator(mode="after")
    def _order(self) -> Racing:
        if self.min > self.max:
            raise rule(f"min > max ({self.min} > {self.max})", "swap them: {min: A, max: B} with A <= B")
        return self


Factors = Annotated[
    dict[Annotated[str, identifier("seed factor")], Annotated[int, Field(ge=1, le=MAX_REPLICATES)]],
    Field(
        min_length=1,
        description="Seed factors: name: levels; a trial runs every combination.",
        json_schema_extra={"propertyNames": {"not": {"enum": ["min", "max"]}}},
    ),
    AfterValidator(factors),
]


Replicates = Annotated[
    Annotated[Annotated[int, Field(ge=1, le=MAX_REPLICATES)], Tag("@count")]
    | Annotated[Racing, Tag("@racing")]
    | Annotated[Factors, Tag("@factors")],
    Discriminator(replicates_form, custom_error_type="replicates_form", custom_error_message="mixed"),
]


# --------------------------------------------------------------------------------------- resources
if TYPE_CHECKING:  # built at run time: three small case models
    CpuAmount: TypeAlias = Any
    GpuAmount: TypeAlias = Any
    MemoryAmount: TypeAlias = Any
else:
    CpuAmount, GpuAmount, MemoryAmount = amount(Cpus, "Cpu"), amount(Gpus, "Gpu"), amount(Memory, "Memory")


class Resources(Block):
    """What one run needs; amounts may depend on variables: [{when: {model: big}, value: 2}, {value: 1}]."""

    cpus: CpuAmount = Field(1.0, description="CPUs per run (default 1).")
    gpus: GpuAmount = Field(
        0.0, description="GPUs per run; fractions share a GPU (0.25 = four runs per GPU)."
    )
    memory: MemoryAmount | None = Field(None, description="Memory per run: bytes, or e.g. 4GB, 512MiB.")
    custom: dict[str, CpuAmount] = Field({}, description="Ray custom resources per run, name: amount.")


# ----------------------------------------------------------------------------------------- compare
class Confirm(Block):
    """Each arm's top configurations rerun on fresh seeds."""

    replicates: Annotated[int, Field(ge=2, le=MAX_REPLICATES)] = Field(
        description="Fresh seeds per configuration."
    )
    top: Annotated[int, Field(ge=1, le=1000)] = Field(1, description="Configurations per arm.")


class Compare(Block):
    """The comparison the hypothesis makes: treatment against baseline on one variable."""

    variable: str = Field(description="The variable whose levels are compared.")
    baseline: Scalar = Field(description="The level to beat.")
    treatment: Annotated[
        Any,
        PlainValidator(levels),
        WithJsonSchema({"anyOf": [{"type": ["string", "number", "boolean"]}, {"type": "array"}]}),
    ] = Field(
        "all",
        description="One level; a list of levels; or `all` / left out: every other level "
        "(many arms, Holm-corrected).",
    )
    metric: str | None = Field(
        None,
        description="The metric compared (default: the primary); its direction says which side is better.",
    )
    alpha: Annotated[float, Field(gt=0, lt=1)] = Field(
        0.05, description="The significance level (default 0.05)."
    )
    arms: Literal["best", "pooled"] = Field(
        "best",
        description="`best` (default): each level is its best trial, by mean over replicates: tuned against "
        "tuned. `pooled`: all trials of the level, averaged per seed: the level over the explored space.",
    )
    within: Annotated[list[str], BeforeValidator(listed, json_schema_input_type=str | list[str])] = Field(
        [],
        description="A blocking variable or a list of them (`dataset`, `[dataset, task]`): one verdict per "
        "setting. Not the compared variable, not conditional.",
    )
    confirm: (
        Annotated[Confirm, BeforeValidator(confirm_count, json_schema_input_type=int | Confirm)] | None
    ) = Field(
        None,
        description="Rerun the chosen configurations on fresh seeds: `10` (replicates, 2 or more), or "
        "`{replicates: 10, top: 3}`.",
    )
    rope: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Region of practical equivalence, in metric units (> 0)."
    )
    correlation: (
        Annotated[
            float,
            Field(ge=0, lt=1),
            BeforeValidator(split),
            WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, SPLIT]}),
        ]
        | None
    ) = Field(
        None,
        description="Correlation of replicates that share data (cross-validation folds), 0 ≤ c < 1, or the "
        "split it derives from: `{test: 30, train: 120}` gives test / (test + train) = 0.2.",
    )


# ------------------------------------------------------------------------------------------ pruner
# Optuna's pruners: each option is Optuna's keyword argument of that name (PRUNERS: which each takes).
OPTIONS = {
    "percentile": "The percentile kept (0-100): 25.0 keeps the best quarter",
    "n_startup_trials": "Trials that finish before any is pruned",
    "n_warmup_steps": "Steps a trial runs before it can be pruned",
    "interval_steps": "Steps between two checks",
    "n_min_trials": "Trials that must have reported a step before it is judged",
    "min_resource": "Steps of the first rung, or auto",
    "max_resource": "Steps of a complete trial, or auto",
    "reduction_factor": "How many trials one promoted trial stands for",
    "bootstrap_count": "Trials a rung needs before it promotes",
    "min_early_stopping_rate": "The first rung that can stop a trial",
    "p_threshold": "The p-value under which a trial is pruned",
    "n_startup_steps": "Steps before any test",
}
PRUNES = {  # method -> when it stops a trial
    "median": "its value is worse than the median of the other trials at the same step",
    "percentile": "it is outside the best percentile of the other trials at the same step",
    "successive_halving": "it is not in the best of its rung (asynchronous successive halving)",
    "hyperband": "successive halving in several brackets, with different first rungs, stops it",
    "wilcoxon": "a Wilcoxon signed-rank test says it is worse than the best trial, step by step",
}


def _pruner(method: str) -> Any:
    """One pruner's model (``Median`` for median): its method and Optuna's options, all but percentile
    optional."""
    fields: dict[str, Any] = {
        "method": (Literal[method], Field(description=f"{method}: prune when {PRUNES[method]}."))
    }
    for option in PRUNERS[method]:
        value: Any = float | Literal["auto"] if option.endswith("_resource") else float
        default: Any = ... if option == "percentile" else None
        fields[option] = (
            value if default is ... else value | None,
            Field(default, description=f"{OPTIONS[option]}."),
        )
    name = method.title().replace("_", "")
    model = create_model(
        name,
        __base__=Block,
        __doc__=f"Prune a trial when {PRUNES[method]} (options: Optuna's of the same names).",
        __module__=__name__,
        **fields,
    )
    return Annotated[model, Tag(f"@{method}")]


if TYPE_CHECKING:  # built at run time from the table
    Pruner: TypeAlias = Any
else:
    _Pruners = Annotated[
        Union[tuple(_pruner(m) for m in PRUNERS)],  # noqa: UP007 (a union built from the table)
        Discriminator(pruner_form, custom_error_type="pruner_form", custom_error_message="unknown pruner"),
    ]
    Pruner = Annotated[
        _Pruners,
        BeforeValidator(
            lambda v: {"method": v} if isinstance(v, str) else v, json_schema_input_type=str | _Pruners
        ),
    ]


# -------------------------------------------------------------------------------------- components
class Component(Block):
    """A declared input of every trial: one of path, job or value."""

    path: str | None = Field(
        None, description="A file or folder, relative to the sweep file's folder; hashed once."
    )
    job: Target | None = Field(
        None, description="module:function run once before the trials; its output folder."
    )
    value: Annotated[Any, AfterValidator(plain)] = Field(
        None, description="A metadata record: any plain data."
    )
    kind: ComponentKind | None = Field(
        None, description="dataset (default for path and job), checkpoint, model, job, metadata."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Component:
        if len({"path", "job", "value"} & self.model_fields_set) != 1:
            raise rule(
                "needs exactly one of path, job, value",
                "e.g. {path: data/train.npz, kind: dataset}, {job: prep:make_features, kind: dataset} "
                "or {value: {source: UCI}, kind: metadata}",
            )
        return self


Components = dict[
    Annotated[str, identifier("component")],
    Annotated[Component, BeforeValidator(path_only, json_schema_input_type=str | Component)],
]


# ------------------------------------------------------------------------------------------- slurm
class Slurm(Block):
    """How `sweeper launch --slurm` asks for nodes; profile < this block < command-line flags."""

    nodes: Whole | None = Field(None, description="Nodes: a Ray head on the first, workers on the rest.")
    partition: Annotated[str, sbatch_value("partition", NAMES)] | None = Field(
        None, description="The partition, or a comma-separated list of them."
    )
    time: Annotated[str, sbatch_value("time", TIME)] | None = Field(
        None, description="MM, HH:MM:SS, D-HH, D-HH:MM:SS or UNLIMITED."
    )
    cpus_per_node: Whole | None = Field(None, description="Also what each Ray node advertises.")
    gpus_per_node: Annotated[str, sbatch_value("gpus_per_node", GPUS)] | None = Field(
        None, description="2, or a100:2."
    )
    mem_per_node: Annotated[str, sbatch_value("mem_per_node", MEM)] | None = Field(
        None, description="e.g. 64G."
    )
    account: Annotated[str, sbatch_value("account", NAMES)] | None = Field(
        None, description="The account the job is charged to."
    )
    qos: Annotated[str, sbatch_value("qos", NAMES)] | None = Field(
        None, description="The quality of service."
    )
    constraint: Annotated[str, sbatch_value("constraint", CONSTRAINT)] | None = Field(
        None, description="Node features the job needs, e.g. a100 or a100|h100."
    )
    requeue: bool | None = Field(
        None, description="Resubmit on preemption or time limit; resume from the table."
    )
    grace_s: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Slurm signals the job this long before its end."
    )
    ray_wait_s: Whole | None = Field(None, description="How long to wait for every Ray node to join.")
    python: OneLine | None = Field(
        None, description="The interpreter on the cluster (default: the one submitting)."
    )
    setup: Annotated[tuple[str, ...], lines("setup")] | None = Field(
        None, description="Shell lines run first (module load, venv activate)."
    )
    sbatch: Annotated[tuple[str, ...], lines("sbatch")] | None = Field(
        None, description="More sbatch options, e.g. --exclusive."
    )
    profile: OneLine | None = Field(None, description="A file in cluster/slurm/ to start from.")


# ---------------------------------------------------------------------------------------- tracking
class Mlflow(Block):
    """An MLflow tracking server the driver mirrors every trial to."""

    uri: Annotated[str, Field(min_length=1)] = Field(
        description="The tracking server, e.g. http://127.0.0.1:5000."
    )
    experiment: Annotated[str, Field(min_length=1)] | None = Field(
        None, description="The MLflow experiment (default: this sweep's experiment name)."
    )


class Tracking(Block):
    """Where the driver mirrors what it records."""

    mlflow: Mlflow = Field(description="An MLflow tracking server.")


# -------------------------------------------------------------------------------------- the root
def _experiment(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise rule(f"expected text, got {kind(value)}", "write a non-empty string")
    name = value.strip()
    if not safe_experiment_name(name):
        raise rule(
            f"{name[:140]!r} is not a safe folder name",
            "use letters, digits, '.', '_' and '-' only, at most 128 characters"
            " (it names the results folder)",
        )
    return name


class Sweep(Block):
    """A sweep file: one experiment, its metrics, its variable space and how to run it."""

    experiment: Annotated[
        Any, PlainValidator(_experiment), WithJsonSchema({"type": "string", "pattern": EXPERIMENT_RE.pattern})
    ] = Field(
        description="The name: letters, digits, `.`, `_`, `-` (at most 128); it names the results folder "
        "`<results>/<experiment>/`."
    )
    hypothesis: str | None = Field(
        None, description="Free text, kept with the results; `compare:` states the comparison that tests it."
    )
    objective: Target | None = Field(
        None,
        description="`module:function`, found next to the sweep file (a spec given in Python: the current "
        "folder) or on PYTHONPATH. The function needs no import of sweeper: it gets the trial's variables as "
        "keyword arguments (plus `seed` if it has a `seed` parameter) and returns a number (the primary "
        "metric) or a dict of metrics. In Python (`sweeper.launch({...})`, `Experiment(...)`) it may be the "
        "function itself, a notebook's or a script's own: runs call it, and it is recorded by name.",
    )
    command: Annotated[
        Any,
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}]}
        ),
    ] = Field(
        None,
        description="A program run per run instead of `objective:`: a command line or a list of arguments, "
        "with `{lr}`, `{seed}`, `{trial}`, `{replicate}`, `{trial_dir}` filled in (README: *Command-line "
        "objectives*).",
    )
    workdir: str | None = Field(
        None, description="Where `command` runs, relative to the sweep file's folder (default: that folder)."
    )
    shell: bool | None = Field(
        None,
        description="Run `command` through a shell, its values quoted (default: no shell, so values cannot "
        "inject commands).",
    )
    metrics: Metrics = Field(
        description="A list of `name: maximize|minimize`; the first is primary (searched on), the others are "
        "recorded."
    )
    variables: Annotated[dict[Annotated[str, identifier("variable")], VariableBody], Field(min_length=1)] = (
        Field(
            description="name: `{choice: [...]}` (text, numbers or booleans), `{int: [low, high]}`, "
            "`{float: [low, high]}` (with `log: true` or `step:`), `{const: v}` or a bare value. "
            "`when: {var: value}` (or a list of values) makes a variable conditional on variables declared "
            "above it; inactive variables are not passed to the objective (give the parameter a default) "
            "and are null in the table."
        )
    )
    search: Search = Field(
        Search(),
        description="How the space is searched: `method`, `trials`, `seed`, `deterministic`, `concurrency`.",
    )
    replicates: Replicates = Field(
        1,
        description="Seeded runs per trial (default 1); the value told to the search is their mean. "
        "`{min: 2, max: 10}` races them (README: *Adaptive replicates*); `{data: 5, init: 2}` runs seed "
        "factors (every combination; names must not clash with variables, columns, `min` or `max`). "
        f"At most {MAX_REPLICATES:,} per trial.",
    )
    resources: Resources = Field(
        Resources(),
        description="Per run: `cpus` (default 1), `gpus` (fractions share a GPU: 0.25 = four runs per GPU), "
        "`memory` (bytes or `4GB`), `custom` (Ray custom resources); an amount may depend on the variables "
        "(README: *Resources*).",
    )
    compare: Compare | None = Field(
        None,
        description="The comparison the hypothesis makes: `{variable: model, treatment: custom, baseline: "
        "resnet50}` (README: *The comparison*).",
    )
    timeout: Duration | None = Field(
        None,
        description="Per run: `90s`, `30m`, `2h`, `1h30m` or seconds. A run past it, counted from its own "
        "start, is stopped and recorded as `timeout` (on every backend; the worker interrupts Python code "
        "with SIGALRM). A run stuck in native code that cannot be interrupted is killed by the driver later, "
        "at submission + twice the timeout (at least + 30 s; ray backend).",
    )
    max_failures: Count | None = Field(
        None,
        description="Stop launching runs once this many runs have `failed` or hit `timeout`; the sweep ends "
        "cleanly with a message (exit code 2). Independently, a sweep whose first 5 runs (from at least 2 "
        "trials, before any run worked) all fail with the same error stops at once (README: *Failed runs*).",
    )
    pruner: Pruner | None = Field(
        None,
        description="Early stopping with an Optuna pruner, judged per trial over its replicates: a method "
        "name, or `{method: median, n_startup_trials: 5}` (README: *Pruning*).",
    )
    components: Components | None = Field(
        None,
        description="Datasets, shared jobs and metadata every trial uses: `name: {path|job|value, kind}` "
        "(README: *Components*).",
    )
    slurm: Annotated[Slurm, BeforeValidator(underscores, json_schema_input_type=Slurm)] | None = Field(
        None,
        description="How `sweeper launch --slurm` asks for nodes; a profile < this block < command-line "
        "flags (README: *Running on a cluster*).",
    )
    tracking: Tracking | None = Field(
        None,
        description="`{mlflow: {uri: http://127.0.0.1:5000, experiment: NAME}}`: mirror what the driver "
        "records to MLflow (`experiment` defaults to the sweep's name).",
    )


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors check a sweep file against (``sweeper schema``, ``sweep.schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Sweep.model_json_schema(),
        "title": "sweeper sweep file",
    }
