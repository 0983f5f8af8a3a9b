"""The experiment as the rest of sweeper reads it: frozen dataclasses, built from a validated spec.

Everything downstream (search, engine, results, analysis) reads these and never the raw YAML. The
file format lives in :mod:`sweeper.spec.schema`, the rules across its keys in :mod:`sweeper.spec.rules`;
:mod:`sweeper.spec.model` reads a file or a dict through them and builds these. No pydantic here:
importing sweeper stays cheap.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from sweeper.spec import columns
from sweeper.spec.columns import COMPONENT_KINDS as COMPONENT_KINDS
from sweeper.spec.columns import ComponentKind as ComponentKind
from sweeper.spec.columns import safe_experiment_name as safe_experiment_name
from sweeper.spec.methods import METHODS as SEARCH_METHODS
from sweeper.spec.methods import Method as Method

Direction = Literal["maximize", "minimize"]
Arms = Literal["best", "pooled"]  # which trials stand for a level of the comparison
DIRECTIONS: tuple[str, ...] = get_args(Direction)
METHODS: tuple[str, ...] = tuple(SEARCH_METHODS)  # the registry (spec/methods.py) is the one list
# What a command template may name besides variables and components.
COMMAND_FIELDS = ("seed", "trial", "replicate", "trial_dir")
# Columns of the trial and history tables that variables and metrics must not shadow.
RESERVED = columns.RESERVED
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXPERIMENT_RE = columns.EXPERIMENT_RE

Scalar = str | int | float | bool
When = tuple[tuple[str, tuple[Scalar, ...]], ...]  # (variable, the values it may take), all must hold


def matches(when: When, params: Mapping[str, Any]) -> bool:
    """Whether the variables ``params`` take values that ``when`` allows (what a condition means)."""
    return all(name in params and params[name] in allowed for name, allowed in when)


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Variable:
    """One controllable factor. ``kind`` is choice, int, float or const.

    ``when`` maps earlier variables to the values that make this one active (all must match).
    """

    name: str
    kind: str
    choices: tuple[Scalar, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    value: Scalar | None = None
    when: When = ()

    def active(self, params: Mapping[str, Any]) -> bool:
        """Whether this variable takes part in a trial whose earlier variables are ``params``."""
        return matches(self.when, params)


@dataclass(frozen=True, slots=True)
class Search:
    method: Method = "tpe"
    trials: int | None = None
    seed: int = 0
    deterministic: bool = False
    # Trials in flight in deterministic mode: fixed so that reruns on any cluster size agree.
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class ResourceCase:
    """``key`` (cpus, gpus, memory or custom.NAME) is ``value`` for runs whose variables match ``when``."""

    key: str
    when: When
    value: float


@dataclass(frozen=True, slots=True)
class Resources:
    """What one run needs. ``cases`` make an amount depend on the run's variables: the first case
    of a key whose ``when`` matches wins, else the plain amount applies (README, "Resources")."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None  # bytes
    custom: tuple[tuple[str, float], ...] = ()
    cases: tuple[ResourceCase, ...] = ()

    def resolve(self, params: Mapping[str, Any]) -> Resources:
        """The plain amounts (no cases) that a run with these variables asks for."""
        if not self.cases:
            return self
        chosen: dict[str, float] = {}
        for case in self.cases:
            if case.key not in chosen and matches(case.when, params):
                chosen[case.key] = case.value
        return self._with(chosen)

    def shapes(self) -> list[Resources]:
        """Every plain resource set a run can ask for (each key's cases combined), for checks."""
        import itertools

        keys = sorted({c.key for c in self.cases})
        options = [[None, *(c.value for c in self.cases if c.key == k)] for k in keys]
        out = [
            self._with({k: v for k, v in zip(keys, combo, strict=True) if v is not None})
            for combo in itertools.product(*options)
        ]
        return list(dict.fromkeys(out))

    def _with(self, chosen: Mapping[str, float]) -> Resources:
        memory = chosen.get("memory", self.memory)
        return Resources(
            chosen.get("cpus", self.cpus),
            chosen.get("gpus", self.gpus),
            int(memory) if memory else None,
            tuple((k, chosen.get(f"custom.{k}", v)) for k, v in self.custom),
        )


@dataclass(frozen=True, slots=True)
class Compare:
    """The comparison a hypothesis makes: ``treatment`` against ``baseline`` on ``variable``.

    ``treatment`` is one level, a tuple of levels, or None for every level but the baseline (many
    arms: the report then corrects for multiple comparisons). ``arms`` says which trials stand for a
    level: ``best`` (its best trial, tuned against tuned) or ``pooled`` (all its trials, averaged
    per seed).
    """

    variable: str
    treatment: Scalar | tuple[Scalar, ...] | None
    baseline: Scalar
    metric: str
    alpha: float = 0.05
    arms: Arms = "best"
    within: tuple[str, ...] = ()  # blocking variables (datasets, tasks): one verdict per setting
    confirm: Confirm | None = None  # rerun the chosen configurations on fresh seeds
    rope: float | None = None  # region of practical equivalence, in metric units
    correlation: float | None = None  # correlation of replicates (cross-validation folds)


@dataclass(frozen=True, slots=True)
class Confirm:
    """The confirmation stage: each arm's ``top`` best configurations rerun on ``replicates`` fresh seeds."""

    replicates: int
    top: int = 1


@dataclass(frozen=True, slots=True)
class Command:
    """A program run once per run instead of a Python function (sweeper.run.command).

    ``argv`` are the template's tokens, each formatted with the run's values ({lr}, {seed}, ...);
    no shell is involved unless ``shell``, so values cannot inject commands.
    """

    argv: tuple[str, ...]
    workdir: str  # absolute
    shell: bool = False
    template: str = ""  # the command line as written (what ``shell: true`` formats)


@dataclass(frozen=True, slots=True)
class Pruner:
    method: str  # one of PRUNERS
    options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of the Optuna pruner


@dataclass(frozen=True, slots=True)
class Component:
    """A declared input of every trial: a file or folder (``path``), the output of a ``job`` run once
    before the trials, or a metadata record (``value``)."""

    name: str
    kind: ComponentKind
    path: str | None = None  # absolute
    job: str | None = None  # module:function
    value: Any = None


@dataclass(frozen=True, slots=True)
class Racing:
    """Adaptive replicates: every trial starts with ``min`` and contenders grow up to ``max``."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class SeedFactor:
    """One seed stream of a factorial replicate design (``replicates: {data: 5, init: 2}``)."""

    name: str
    n: int


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where the driver mirrors what it records: an MLflow tracking server."""

    mlflow_uri: str
    mlflow_experiment: str | None = None  # defaults to the experiment's name


TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """What a Slurm sweep job asks for; ``None`` means "not set at this layer" (see resolved())."""

    nodes: int | None = None
    partition: str | None = None
    time: str | None = None  # Slurm's formats: MM, HH:MM:SS, D-HH, D-HH:MM:SS ...
    cpus_per_node: int | None = None  # also what each Ray node advertises
    gpus_per_node: str | None = None  # "2" or "a100:2"
    mem_per_node: str | None = None  # "64G"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    requeue: bool | None = None  # resubmit on preemption / time limit, resume from the table
    grace_s: int | None = None  # Slurm signals the job this long before its time limit
    ray_wait_s: int | None = None  # how long to wait for every Ray node to join
    python: str | None = None  # interpreter on the cluster; default: the one submitting
    setup: tuple[str, ...] | None = None  # shell lines run first (module load, venv activate)
    sbatch: tuple[str, ...] | None = None  # more sbatch options, e.g. --exclusive, --reservation=R
    profile: str | None = None  # a file in cluster/slurm/ to start from

    def merged(self, over: SlurmOptions) -> SlurmOptions:
        """This layer overridden by every field that ``over`` sets."""
        changes = {
            f.name: getattr(over, f.name)
            for f in dataclasses.fields(over)
            if getattr(over, f.name) is not None
        }
        return dataclasses.replace(self, **changes)

    def resolved(self) -> SlurmOptions:
        """Defaults filled in for fields no layer set."""
        return SlurmOptions(nodes=1, requeue=True, grace_s=120, ray_wait_s=300, setup=(), sbatch=()).merged(
            self
        )

    def time_s(self) -> int | None:
        """The time limit in seconds, or None when unset or unlimited."""
        if self.time is None or self.time.upper() in ("UNLIMITED", "INFINITE"):
            return None
        return _time_seconds(self.time)


def _time_seconds(text: str) -> int:
    m = TIME.match(text)
    if m is None:
        raise ValueError(text)
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None:  # MM, MM:SS, HH:MM:SS
        parts = [p for p in (a, b, c) if p is not None]
        if len(parts) == 1:
            return parts[0] * 60
        if len(parts) == 2:
            return parts[0] * 60 + parts[1]
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    # D-HH, D-HH:MM, D-HH:MM:SS
    return days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    objective: str | None  # module:function, or None when ``command`` runs a program
    metrics: tuple[Metric, ...]
    variables: tuple[Variable, ...]
    search: Search = field(default_factory=Search)
    replicates: int = 1  # the most replicates a trial can have (racing: max; factors: their product)
    racing: Racing | None = None
    factors: tuple[SeedFactor, ...] = ()
    resources: Resources = field(default_factory=Resources)
    hypothesis: str = ""
    compare: Compare | None = None
    timeout: float | None = None  # seconds one run may take before it is killed (ray backend)
    max_failures: int | None = None  # failed or timed-out runs after which the sweep stops
    source: str = "<dict>"  # the sweep file, for messages
    root: str = "."  # folder the objective's module is looked up in first
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # as given, for experiment.json
    slurm: SlurmOptions | None = None  # the `slurm:` block: how `launch --slurm` asks for nodes
    command: Command | None = None
    pruner: Pruner | None = None
    components: tuple[Component, ...] = ()
    tracking: Tracking | None = None
    # The objective given as a function in Python (``objective`` is then its name, module:function):
    # the runs call it, so a notebook's or a script's own function needs no module file.
    function: Callable[..., Any] | None = field(default=None, compare=False, repr=False)

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


# method -> the options each accepts (keyword arguments of its Optuna pruner); schema.py builds its models
PRUNERS: dict[str, tuple[str, ...]] = {
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "successive_halving": ("min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    "wilcoxon": ("p_threshold", "n_startup_steps"),
}
