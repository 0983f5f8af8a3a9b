"""The sweep file, top to bottom: one pydantic model per block, every key with its description.

This module is the file format's one home. The JSON Schema editors use (``sweeper schema``,
``sweep.schema.json``) and the README's key tables come from these descriptions; the rules are the
models' types and validators. Validation is strict ("5" and true are not numbers) and pure: no file
is opened and nothing is imported (``workdir`` and the objective are checked at launch).
Per-field rules raise :func:`rule`; the cross-field rules (conditional variables refer to variables
above them, compare levels exist, placeholders are known, names do not clash) are :class:`Sweep`'s
validator, which reports all of them at once. :mod:`sweeper.spec.messages` words pydantic's errors.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import string
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sweeper.search.methods import METHODS, is_enumerated
from sweeper.spec import experiment as _slurm
from sweeper.spec.experiment import (
    COMMAND_FIELDS,
    EXPERIMENT_RE,
    NAME_RE,
    RESERVED,
    ComponentKind,
    Direction,
    Method,
    safe_experiment_name,
)

MAX_REPLICATES = 10_000  # per trial, all seed factors together
INT64 = 2**63
EXACT_INT = 2**53  # int ranges: whole numbers a float holds exactly (Optuna samples through floats)
Loc = tuple[str | int, ...]


def rule(problem: str, fix: str) -> PydanticCustomError:
    """A broken rule, worded for the user; :mod:`~sweeper.spec.messages` adds file, line and field."""
    return PydanticCustomError("sweeper", "{problem}", {"problem": problem, "fix": fix})


def issue(loc: Loc, error: PydanticCustomError, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=error, loc=loc, input=value)


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _hint(word: Any, options: list[str]) -> str:
    close = difflib.get_close_matches(str(word), options, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


class Block(BaseModel):
    """One block of the sweep file: strict, frozen, and every unknown key named with a close match."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False, validate_by_name=False
    )

    shape: ClassVar[tuple[str, str]] = ("a mapping", "write it as key: value pairs; keys: {keys}")

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: Any) -> Any:
        keys = [f.alias or name for name, f in cls.model_fields.items()]
        if not isinstance(data, dict):
            shape, fix = cls.shape
            raise rule(f"expected {shape}, got {_kind(data)}", fix.replace("{keys}", ", ".join(keys)))
        unknown = [k for k in data if k not in keys]
        if not unknown:
            return handler(data)
        meant = set()
        issues = []
        for key in unknown:
            hint = _hint(key, keys)
            meant.add(hint.split("'")[1] if hint else None)
            issues.append(issue((key,), rule("unknown key", f"{hint}valid keys here: {', '.join(keys)}")))
        try:
            handler({k: v for k, v in data.items() if k in keys})
        except ValidationError as exc:
            issues += [
                issue(e["loc"], PydanticCustomError(e["type"], e["msg"], e.get("ctx")), e["input"])
                for e in exc.errors()
                if not (e["type"] == "missing" and e["loc"][-1] in meant)  # the typo said it already
            ]
        raise ValidationError.from_exception_data(cls.__name__, issues)


def _fail_all(title: str, issues: list[InitErrorDetails]) -> None:
    if issues:
        raise ValidationError.from_exception_data(title, issues)


# ---------------------------------------------------------------------------------------- values
def _scalar(value: Any) -> Any:
    if isinstance(value, bool | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, int):
        if -INT64 <= value < INT64:
            return value
        raise rule(f"{value} is out of range for a table column", "use a whole number within ±2**63")
    raise rule(
        f"{_kind(value)} is not text, a number or a boolean",
        "write a single value (map richer objects to it inside your objective)",
    )


Scalar = Annotated[Any, PlainValidator(_scalar), WithJsonSchema({"type": ["string", "number", "boolean"]})]


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


When = Annotated[
    dict[str, Annotated[list[Scalar], BeforeValidator(_as_list, json_schema_input_type=Any)]],
    Field(min_length=1),
]


WHEN = (
    "Makes this conditional: active only when every named variable (declared above) takes the value, or "
    "one of the listed values, e.g. {model: custom}. Inactive variables are not passed to the objective "
    "(give the parameter a default) and are null in the table."
)


def _identifier(what: str) -> Any:
    def check(name: Any) -> str:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise rule(
                f"{what} name {name!r} is not an identifier",
                "use letters, digits and '_' (it becomes a column and a keyword argument)",
            )
        if name in RESERVED:
            raise rule(
                f"{what} name {name!r} clashes with a trial-table column",
                f"rename it; reserved: {', '.join(sorted(RESERVED))}",
            )
        return name

    return PlainValidator(check, json_schema_input_type=str)


def _target(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", value.strip()):
        raise rule(
            f"{value!r} is not module:function",
            "write it as module:function, e.g. models:train for train() in models.py",
        )
    return value.strip()


Target = Annotated[
    Any,
    PlainValidator(_target),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"}),
]


def _seconds(value: Any) -> float:
    """Seconds from 90, '90s', '30m', '2h' or '1h30m'."""
    seconds: Any = value
    if isinstance(value, str):
        m = re.fullmatch(
            r"\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s?)?\s*",
            value,
            re.IGNORECASE,
        )
        seconds = None
        if m and any(m.groups()):
            h, mins, s = (float(g) if g else 0.0 for g in m.groups())
            seconds = h * 3600 + mins * 60 + s
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 1e-3 <= seconds <= 366 * 86400
    ):
        raise rule(f"{value!r} is not a duration up to a year", "write e.g. 90s, 30m, 2h or 1h30m")
    return float(seconds)


Duration = Annotated[
    Any,
    PlainValidator(_seconds),
    WithJsonSchema({"type": ["number", "string"], "examples": ["90s", "30m", "2h", "1h30m", 45]}),
]
Count = Annotated[int, Field(ge=1, le=INT64 - 1)]


def _experiment(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise rule(f"expected text, got {_kind(value)}", "write a non-empty string")
    name = value.strip()
    if not safe_experiment_name(name):
        raise rule(
            f"{name[:140]!r} is not a safe folder name",
            "use letters, digits, '.', '_' and '-' only, at most 128 characters"
            " (it names the results folder)",
        )
    return name


# ------------------------------------------------------------------------------------- variables
def _bounds(kind: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, list) or len(value) != 2:
            raise rule("expected [low, high]", f"write e.g. {{{kind}: [1, 10]}}")
        return value

    return BeforeValidator(check)


def _exact(value: int) -> int:
    if abs(value) > EXACT_INT:
        raise rule(
            f"{value} is out of range for an int range (at most 2**53 either side)",
            "use smaller bounds, or a float range with log: true for such scales",
        )
    return value


RangeInt = Annotated[int, AfterValidator(_exact)]


class _Range(Block):
    when: When | None = Field(None, description=WHEN)
    log: bool = Field(False, description="Sample on a log scale (needs low > 0; not with step).")

    def _check(self, kind: str, low: float, high: float, step: float | None) -> None:
        issues = []
        if low > high:
            issues.append(
                issue((kind,), rule(f"low > high ({low} > {high})", "swap the bounds: [low, high]"))
            )
        elif not math.isfinite(high - low):
            issues.append(
                issue((kind,), rule("the range is too wide to sample", "narrow it, or use log: true"))
            )
        if self.log and low <= 0:
            issues.append(
                issue(
                    ("log",),
                    rule(f"a log range needs low > 0, got {low}", "raise low above zero or drop log: true"),
                )
            )
        if self.log and step is not None:
            issues.append(
                issue(
                    ("step",), rule("step and log cannot be combined (Optuna refuses it)", "drop one of them")
                )
            )
        _fail_all(type(self).__name__, issues)


class IntRange(_Range):
    """Whole numbers from low to high, both included."""

    bounds: Annotated[list[RangeInt], _bounds("int"), Field(min_length=2, max_length=2)] = Field(
        alias="int", description="[low, high], whole numbers, both included."
    )
    step: Annotated[int, Field(gt=0, le=EXACT_INT)] | None = Field(
        None, description="Only low, low+step, ..."
    )

    @model_validator(mode="after")
    def _range(self) -> IntRange:
        self._check("int", self.bounds[0], self.bounds[1], self.step)
        return self


class FloatRange(_Range):
    """Real numbers from low to high."""

    bounds: Annotated[list[float], _bounds("float"), Field(min_length=2, max_length=2)] = Field(
        alias="float", description="[low, high], finite numbers."
    )
    step: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Only low, low+step, ... (what grid and bruteforce need to enumerate)."
    )

    @model_validator(mode="after")
    def _range(self) -> FloatRange:
        self._check("float", self.bounds[0], self.bounds[1], self.step)
        return self


def _distinct(values: list[Any]) -> list[Any]:
    """Each value once, also as text (1 and '1' are one column value); linear, for choices of 100,000."""
    by_value: dict[Any, Any] = {}
    by_text: dict[str, Any] = {}
    for a in values:
        b = by_value.get(a, by_text.get(str(a), _distinct))
        if b is not _distinct:
            same = (
                "is listed twice" if repr(a) == repr(b) else f"and {b!r} are the same in a table or a command"
            )
            raise rule(f"{a!r} {same}", "list each value once, all of one type (all text or all numbers)")
        by_value.setdefault(a, a)
        by_text.setdefault(str(a), a)
    return values


class Choice(Block):
    """One of a list of values (categorical)."""

    choice: Annotated[list[Scalar], Field(min_length=1), AfterValidator(_distinct)] = Field(
        description="The values to try: text, numbers or booleans, each once."
    )
    when: When | None = Field(None, description=WHEN)


class Const(Block):
    """A fixed value every trial gets (also written as the bare value)."""

    const: Scalar = Field(description="The value.")
    when: When | None = Field(None, description=WHEN)


def _variable_form(body: Any) -> str | None:
    if isinstance(body, dict):
        kinds = [k for k in ("choice", "int", "float", "const") if k in body]
        return f"@{kinds[0]}" if len(kinds) == 1 else None
    return None if isinstance(body, list) else "@value"


VariableBody = Annotated[
    Annotated[Choice, Tag("@choice")]
    | Annotated[IntRange, Tag("@int")]
    | Annotated[FloatRange, Tag("@float")]
    | Annotated[Const, Tag("@const")]
    | Annotated[Scalar, Tag("@value")],
    Discriminator(
        _variable_form,
        custom_error_type="variable_form",
        custom_error_message="needs exactly one of choice, int, float, const",
    ),
]


# ------------------------------------------------------------------------------ metrics, search
def _metrics(value: Any) -> Any:
    if isinstance(value, list) and all(isinstance(m, dict) and len(m) == 1 for m in value):
        out: dict[Any, Any] = {}
        for m in value:
            ((name, direction),) = m.items()
            if name in out:
                raise rule(f"metric {name!r} is named twice", "give each metric once")
            out[name] = direction
        return out
    if isinstance(value, dict):
        return value
    raise rule(
        "expected a list of name: direction pairs",
        "write e.g.\n    metrics:\n      - accuracy: maximize\n      - seconds: minimize",
    )


Metrics = Annotated[
    dict[Annotated[str, _identifier("metric")], Direction],
    BeforeValidator(_metrics, json_schema_input_type=list[dict[str, Direction]] | dict[str, Direction]),
    Field(min_length=1),
]


class Search(Block):
    """How the variable space is searched."""

    method: Method = Field(
        "tpe",
        description="`grid` (every point, enumerated by sweeper; needs `step` on floats; `trials` optional "
        "cap), `bruteforce` (the same points in a seeded random order, so a capped run is a uniform subset; "
        "points are computed from their number, so `trials: 5` over a space of 10^12 points costs 5 points, "
        "and a conditional grid is counted branch by branch), `random`, `tpe` (constant liar for trials in "
        "flight), `cmaes`, `qmc` (scrambled Sobol), `nsga2` (multi-objective over every metric).",
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


# ------------------------------------------------------------------------------------ replicates
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


def _factors(value: dict[str, int]) -> dict[str, int]:
    total = math.prod(value.values())
    if total > MAX_REPLICATES:
        raise rule(
            f"{' x '.join(map(str, value.values()))} = {total} replicates per trial"
            f" is more than {MAX_REPLICATES}",
            "use fewer levels per factor (each trial runs every combination)",
        )
    return value


Factors = Annotated[
    dict[Annotated[str, _identifier("seed factor")], Annotated[int, Field(ge=1, le=MAX_REPLICATES)]],
    Field(
        min_length=1,
        description="Seed factors: name: levels; a trial runs every combination.",
        json_schema_extra={"propertyNames": {"not": {"enum": ["min", "max"]}}},
    ),
    AfterValidator(_factors),
]


def _replicates_form(value: Any) -> str | None:
    if isinstance(value, dict) and {"min", "max"} & set(value):
        return "@racing" if set(value) <= {"min", "max"} else None
    return "@factors" if isinstance(value, dict) else "@count"


Replicates = Annotated[
    Annotated[Annotated[int, Field(ge=1, le=MAX_REPLICATES)], Tag("@count")]
    | Annotated[Racing, Tag("@racing")]
    | Annotated[Factors, Tag("@factors")],
    Discriminator(_replicates_form, custom_error_type="replicates_form", custom_error_message="mixed"),
]


# ------------------------------------------------------------------------------------- resources
def _gpus(value: float) -> float:
    if value > 1 and value != int(value):
        raise rule(
            f"fractional GPUs above 1 ({value}) cannot be placed",
            "use a fraction below 1 (e.g. 0.25) or a whole number",
        )
    return value


def _bytes(value: Any) -> Any:
    """'4GB' / '512MiB' / '1e9' to bytes."""
    if not isinstance(value, str):
        return value
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)\s*([KMGT]?)(i?B)?\s*", value, re.IGNORECASE)
    if not m:
        raise rule(f"{value!r} is not an amount of memory", "write bytes, or e.g. 4GB or 512MiB")
    return (
        float(m.group(1))
        * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    )


Cpus = Annotated[float, Field(ge=0, le=1e6)]
Gpus = Annotated[float, Field(ge=0, le=1e4), AfterValidator(_gpus)]
Memory = Annotated[
    float, BeforeValidator(_bytes, json_schema_input_type=float | str), Field(ge=1, le=2.0**60)
]


def _case(amount: Any, name: str) -> Any:
    model = type(
        f"{name}Case",
        (Block,),
        {
            "__annotations__": {"when": "When | None", "value": amount},
            "__doc__": "This amount for runs whose variables match when (without when: the default).",
            "__module__": __name__,
            "shape": (
                "{when: {variable: value}, value: N}",
                "write e.g. {when: {model: resnet50}, value: 1}",
            ),
            "when": Field(
                None, description="The variables' values this case is for; without it: the default."
            ),
            "value": Field(description="The amount runs of this case ask for."),
        },
    )

    def form(value: Any) -> str:
        return "@cases" if isinstance(value, list) else "@case" if isinstance(value, dict) else "@plain"

    return Annotated[
        Annotated[amount, Tag("@plain")]
        | Annotated[model, Tag("@case")]
        | Annotated[Annotated[list[model], Field(min_length=1)], Tag("@cases")],  # type: ignore[valid-type]
        Discriminator(form),
    ]


if TYPE_CHECKING:  # built at run time: three small case models
    CpuAmount: TypeAlias = Any
    GpuAmount: TypeAlias = Any
    MemoryAmount: TypeAlias = Any
else:
    CpuAmount, GpuAmount, MemoryAmount = _case(Cpus, "Cpu"), _case(Gpus, "Gpu"), _case(Memory, "Memory")


class Resources(Block):
    """What one run needs; amounts may depend on variables: [{when: {model: big}, value: 2}, {value: 1}]."""

    cpus: CpuAmount = Field(1.0, description="CPUs per run (default 1).")
    gpus: GpuAmount = Field(
        0.0, description="GPUs per run; fractions share a GPU (0.25 = four runs per GPU)."
    )
    memory: MemoryAmount | None = Field(None, description="Memory per run: bytes, or e.g. 4GB, 512MiB.")
    custom: dict[str, CpuAmount] = Field({}, description="Ray custom resources per run, name: amount.")


# -------------------------------------------------------------------------------------- compare
def _levels(value: Any) -> Any:
    if value is None:  # left empty: every other level, as when left out
        return "all"
    if isinstance(value, list):
        if not value:
            raise rule("empty list", "name one or more levels, or write all")
        return [_scalar(v) for v in value]
    return _scalar(value)


class Confirm(Block):
    """Each arm's top configurations rerun on fresh seeds."""

    replicates: Annotated[int, Field(ge=2, le=MAX_REPLICATES)] = Field(
        description="Fresh seeds per configuration."
    )
    top: Annotated[int, Field(ge=1, le=1000)] = Field(1, description="Configurations per arm.")


def _confirm(value: Any) -> Any:
    return {"replicates": value} if isinstance(value, int) and not isinstance(value, bool) else value


def _within(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class Compare(Block):
    """The comparison the hypothesis makes: treatment against baseline on one variable."""

    variable: str = Field(description="The variable whose levels are compared.")
    baseline: Scalar = Field(description="The level to beat.")
    treatment: Annotated[
        Any,
        PlainValidator(_levels),
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
    within: Annotated[list[str], BeforeValidator(_within, json_schema_input_type=str | list[str])] = Field(
        [],
        description="A blocking variable or a list of them (`dataset`, `[dataset, task]`): one verdict per "
        "setting. Not the compared variable, not conditional.",
    )
    confirm: Annotated[Confirm, BeforeValidator(_confirm, json_schema_input_type=int | Confirm)] | None = (
        Field(
            None,
            description="Rerun the chosen configurations on fresh seeds: `10` (replicates, 2 or more), or "
            "`{replicates: 10, top: 3}`.",
        )
    )
    rope: Annotated[float, Field(gt=0)] | None = Field(
        None, description="Region of practical equivalence, in metric units (> 0)."
    )
    correlation: Annotated[float, Field(ge=0, lt=1)] | None = Field(
        None, description="Correlation of replicates that share data (cross-validation folds), 0 ≤ c < 1."
    )


# ----------------------------------------------------------------- pruner, components, tracking
def _option(text: str) -> Any:
    return Field(None, description=f"{text} (Optuna's option of this name).")


Auto = float | Literal["auto"]


class _Steps(Block):
    """The options Optuna's median and percentile pruners share."""

    n_startup_trials: float | None = _option("Trials that finish before any is pruned")
    n_warmup_steps: float | None = _option("Steps a trial runs before it can be pruned")
    interval_steps: float | None = _option("Steps between two checks")
    n_min_trials: float | None = _option("Trials that must have reported a step before it is judged")


class Median(_Steps):
    """Prune a trial whose value is worse than the median of the others at the same step."""

    method: Literal["median"] = Field(
        description="median: worse than the median of the other trials at the same step."
    )


class Percentile(_Steps):
    """Prune a trial outside the best percentile of the others at the same step."""

    method: Literal["percentile"] = Field(
        description="percentile: outside the best percentile of the other trials at the same step."
    )
    percentile: float = Field(description="The percentile kept (0-100): 25.0 keeps the best quarter.")


class _Rungs(Block):
    """The options Optuna's successive halving and Hyperband share."""

    min_resource: Auto | None = _option("Steps of the first rung, or auto")
    reduction_factor: float | None = _option("How many trials one promoted trial stands for")
    bootstrap_count: float | None = _option("Trials a rung needs before it promotes")


class SuccessiveHalving(_Rungs):
    """Asynchronous successive halving: a trial goes on only if it is in the best of its rung."""

    method: Literal["successive_halving"] = Field(
        description="successive_halving: asynchronous successive halving."
    )
    min_early_stopping_rate: float | None = _option("The first rung that can stop a trial")


class Hyperband(_Rungs):
    """Successive halving in several brackets with different first rungs."""

    method: Literal["hyperband"] = Field(description="hyperband: successive halving in several brackets.")
    max_resource: Auto | None = _option("Steps of a complete trial, or auto")


class Wilcoxon(Block):
    """Prune when a Wilcoxon signed-rank test says the trial is worse than the best (per step)."""

    method: Literal["wilcoxon"] = Field(description="wilcoxon: a signed-rank test against the best trial.")
    p_threshold: float | None = _option("The p-value under which a trial is pruned")
    n_startup_steps: float | None = _option("Steps before any test")


PRUNER_MODELS = (Median, Percentile, SuccessiveHalving, Hyperband, Wilcoxon)


def _pruner_form(value: Any) -> str | None:
    method = value.get("method") if isinstance(value, dict) else value
    return f"@{method}" if isinstance(method, str) else None


_Pruners = Annotated[
    Annotated[Median, Tag("@median")]
    | Annotated[Percentile, Tag("@percentile")]
    | Annotated[SuccessiveHalving, Tag("@successive_halving")]
    | Annotated[Hyperband, Tag("@hyperband")]
    | Annotated[Wilcoxon, Tag("@wilcoxon")],
    Discriminator(_pruner_form, custom_error_type="pruner_form", custom_error_message="unknown pruner"),
]
Pruner = Annotated[
    _Pruners,
    BeforeValidator(
        lambda v: {"method": v} if isinstance(v, str) else v, json_schema_input_type=str | _Pruners
    ),
    Field(
        description="Early stopping with an Optuna pruner, judged per trial over its replicates: "
        "a method name, or {method: ..., option: value}."
    ),
]


def _plain(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise rule("must be plain data (text, numbers, lists, mappings)", "write it as YAML data") from None
    return value


class Component(Block):
    """A declared input of every trial: one of path, job or value."""

    path: str | None = Field(
        None, description="A file or folder, relative to the sweep file's folder; hashed once."
    )
    job: Target | None = Field(
        None, description="module:function run once before the trials; its output folder."
    )
    value: Annotated[Any, AfterValidator(_plain)] = Field(
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


def _path_only(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


Components = dict[
    Annotated[str, _identifier("component")],
    Annotated[Component, BeforeValidator(_path_only, json_schema_input_type=str | Component)],
]


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


# ----------------------------------------------------------------------------------------- slurm
def _pattern(key: str, pattern: re.Pattern[str]) -> Any:
    def check(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and key in ("time", "gpus_per_node"):
            value = str(value)  # time: minutes, as sbatch reads a bare number
        if not isinstance(value, str) or not value.strip():
            raise rule(f"expected text, got {value!r}", f"write e.g. {key}: {_slurm.EXAMPLES[key]}")
        value = value.strip()
        if not (key == "time" and value.upper() in ("UNLIMITED", "INFINITE")) and not pattern.match(value):
            raise rule(
                f"{value!r} is not a valid {key.replace('_', ' ')}",
                f"write e.g. {key}: {_slurm.EXAMPLES[key]} (no spaces, quotes or shell characters)",
            )
        return str(value)

    return PlainValidator(check, json_schema_input_type=str | int)


def _lines(key: str) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise rule(
                f"expected a list of text lines, got {value!r}",
                "write e.g. setup: [module load cuda/12.1, source ~/venv/bin/activate]",
            )
        for arg in items if key == "sbatch" else ():
            if not _slurm.SBATCH_ARG.match(arg):
                raise rule(
                    f"{arg!r} is not a plain --option or --option=value",
                    "write long options without spaces or quotes, e.g. --exclusive or --reservation=gpu-week",
                )
        return tuple(items)

    return PlainValidator(check, json_schema_input_type=str | list[str])


def _one_line(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\0" in value:
        raise rule(f"expected a path or name on one line, got {value!r}", "give a plain path or name")
    return value.strip()


OneLine = Annotated[Any, PlainValidator(_one_line), WithJsonSchema({"type": "string"})]
Whole = Annotated[int, Field(ge=1)]


class Slurm(Block):
    """How `sweeper launch --slurm` asks for nodes; profile < this block < command-line flags."""

    nodes: Whole | None = Field(None, description="Nodes: a Ray head on the first, workers on the rest.")
    partition: Annotated[str, _pattern("partition", _slurm.NAME)] | None = Field(
        None, description="The partition, or a comma-separated list of them."
    )
    time: Annotated[str, _pattern("time", _slurm.TIME)] | None = Field(
        None, description="MM, HH:MM:SS, D-HH, D-HH:MM:SS or UNLIMITED."
    )
    cpus_per_node: Whole | None = Field(None, description="Also what each Ray node advertises.")
    gpus_per_node: Annotated[str, _pattern("gpus_per_node", _slurm.GPUS)] | None = Field(
        None, description="2, or a100:2."
    )
    mem_per_node: Annotated[str, _pattern("mem_per_node", _slurm.MEM)] | None = Field(
        None, description="e.g. 64G."
    )
    account: Annotated[str, _pattern("account", _slurm.NAME)] | None = Field(
        None, description="The account the job is charged to."
    )
    qos: Annotated[str, _pattern("qos", _slurm.NAME)] | None = Field(
        None, description="The quality of service."
    )
    constraint: Annotated[str, _pattern("constraint", _slurm.CONSTRAINT)] | None = Field(
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
    setup: Annotated[tuple[str, ...], _lines("setup")] | None = Field(
        None, description="Shell lines run first (module load, venv activate)."
    )
    sbatch: Annotated[tuple[str, ...], _lines("sbatch")] | None = Field(
        None, description="More sbatch options, e.g. --exclusive."
    )
    profile: OneLine | None = Field(None, description="A file in cluster/slurm/ to start from.")


def underscores(value: Any) -> Any:
    """Slurm keys may be written as sbatch spells them (cpus-per-node)."""
    return {str(k).replace("-", "_"): v for k, v in value.items()} if isinstance(value, dict) else value


# ----------------------------------------------------------------------------------- the file
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
        "metric) or a dict of metrics.",
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
    variables: Annotated[dict[Annotated[str, _identifier("variable")], VariableBody], Field(min_length=1)] = (
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

    @model_validator(mode="after")
    def _cross(self) -> Sweep:
        issues: list[InitErrorDetails] = []

        def bad(loc: Loc, problem: str, fix: str) -> None:
            issues.append(issue(loc, rule(problem, fix)))

        given = self.model_fields_set
        if ("objective" in given and self.objective is not None) == (
            "command" in given and self.command is not None
        ):
            bad(
                ("objective",),
                "give exactly one of objective: (a Python function) or command: (a program)",
                "write objective: module:function, or command: python train.py --lr {lr} --seed {seed}",
            )
        for key in ("workdir", "shell"):
            if key in given and self.command is None:
                bad((key,), "only applies to command:", f"drop {key}:, or use command: instead of objective:")
        known: dict[str, Any] = {}
        for var, body in self.variables.items():
            if _conditional(body):
                self._when(("variables", var, "when"), body.when, known, var, bad)  # type: ignore[arg-type]
            known[var] = body
        for amount, cases in self._cases():
            for loc, case in cases:
                if case.when:
                    self._when(("resources", *amount, *loc, "when"), case.when, known, None, bad)
        self._search(bad)
        self._names(bad)
        if self.command is not None:
            self._command(bad)
        if self.compare is not None:
            self._compare(self.compare, bad)
        _fail_all("Sweep", issues)
        return self

    def _when(
        self, at: Loc, when: dict[str, list[Any]], known: dict[str, Any], this: str | None, bad: Any
    ) -> None:
        for ref, values in when.items():
            if ref not in known:
                where = f"declared before {this!r}" if this else "of this sweep"
                bad(
                    (*at, ref),
                    f"names no variable {where}",
                    f"declare {ref!r} above it (known: {', '.join(known) or 'none'})",
                )
                continue
            target = known[ref]
            for value in values:
                if isinstance(target, Choice) and value not in target.choice:
                    bad(
                        (*at, ref),
                        f"{value!r} is not one of {target.choice}",
                        "use one of the listed choices",
                    )

    def _cases(self) -> list[tuple[Loc, list[tuple[Loc, Any]]]]:
        out: list[tuple[Loc, list[tuple[Loc, Any]]]] = []
        amounts: list[tuple[Loc, Any]] = [
            (("cpus",), self.resources.cpus),
            (("gpus",), self.resources.gpus),
            (("memory",), self.resources.memory),
        ]
        amounts += [(("custom", k), v) for k, v in self.resources.custom.items()]
        for key, amount in amounts:
            if isinstance(amount, list):
                out.append((key, [((i,), c) for i, c in enumerate(amount)]))
            elif isinstance(amount, Block):
                out.append((key, [((), amount)]))
        return out

    def _search(self, bad: Any) -> None:
        method = self.search.method
        multi = METHODS[method].multi_objective
        if self.search.trials is None and not is_enumerated(method):
            bad(("search", "trials"), f"method {method} needs a budget", "add trials: N to search:")
        if is_enumerated(method):
            for var, body in self.variables.items():
                if isinstance(body, FloatRange) and body.step is None:
                    bad(
                        ("variables", var),
                        f"{method} cannot enumerate a continuous float range",
                        "add step: to the range, make it a choice, or use method: random / tpe",
                    )
        if multi and len(self.metrics) < 2:
            bad(
                ("search", "method"),
                f"{method} is multi-objective and needs two or more metrics",
                "add a metric, or use tpe for one metric",
            )
        if self.pruner is not None and multi:
            bad(
                ("pruner",),
                f"Optuna's pruners do not work with multi-objective search ({method})",
                "drop pruner:, or search one metric with tpe",
            )

    def _names(self, bad: Any) -> None:
        taken = {*self.variables, "seed", "trial", "replicate"}
        for comp in self.components or {}:
            if comp in taken:
                bad(
                    ("components", comp),
                    f"{comp!r} is already a variable or a run argument",
                    "rename the component",
                )
        if isinstance(self.replicates, dict):
            clash = {*self.variables, *(self.components or {}), "min", "max"}
            for factor in self.replicates:
                if factor in clash:
                    bad(
                        ("replicates", factor),
                        f"seed factor {factor!r} clashes with a variable, a component or min/max",
                        "rename the factor",
                    )

    def _command(self, bad: Any) -> None:
        import shlex

        raw = self.command
        argv: list[str] = []
        if (
            isinstance(raw, list)
            and raw
            and all(isinstance(t, str | int | float) and not isinstance(t, bool) for t in raw)
        ):
            argv = [str(t) for t in raw]
        elif isinstance(raw, str) and raw.strip():
            try:
                argv = shlex.split(raw)
            except ValueError as exc:
                bad(("command",), f"cannot split into arguments: {exc}", "close the quote")
                return
        else:
            bad(
                ("command",),
                f"expected a command line or a list of arguments, got {_kind(raw)}",
                "write e.g. command: python train.py --lr {lr} --seed {seed}",
            )
            return
        samples: dict[str, list[Any]] = {f: [0] for f in ("seed", "trial", "replicate")}
        samples["trial_dir"] = ["/trial/dir"]
        samples.update({c: ["/a/path"] for c in self.components or {}})
        conditional = set()
        for var, body in self.variables.items():
            samples[var] = (
                body.choice
                if isinstance(body, Choice)
                else [body.bounds[0], body.bounds[1]]
                if isinstance(body, IntRange | FloatRange)
                else [body.const]
                if isinstance(body, Const)
                else [body]
            )
            if _conditional(body):
                conditional.add(var)
            if var == "trial_dir" or (self.components and "trial_dir" in self.components):
                bad(
                    ("variables", "trial_dir"),
                    "'trial_dir' is taken by command objectives",
                    "rename the variable",
                )
        fields = ", ".join("{" + k + "}" for k in COMMAND_FIELDS)
        form = string.Formatter()
        for token in argv:
            try:
                parts = [(f, spec, conv) for _, f, spec, conv in form.parse(token) if f is not None]
            except ValueError as exc:
                bad(
                    ("command",),
                    f"bad placeholder in {token!r}: {exc}",
                    "write placeholders as {name}; double braces {{ }} for literal ones",
                )
                continue
            for f, spec, conv in parts:
                if f in conditional:
                    bad(
                        ("command",),
                        f"{{{f}}} is a conditional variable, absent when inactive",
                        f"read it from the environment (SWEEPER_{f.upper()}, unset when inactive)",
                    )
                elif f not in samples:
                    close = difflib.get_close_matches(f, sorted(samples), n=1)
                    hint = f"did you mean {{{close[0]}}}? " if close else ""
                    bad(
                        ("command",),
                        f"placeholder {{{f}}} names nothing",
                        f"{hint}use a variable, a component, or one of {fields}",
                    )
                else:
                    try:
                        for value in samples[f]:
                            form.format_field(form.convert_field(value, conv), spec or "")
                    except (ValueError, TypeError) as exc:
                        bad(
                            ("command",),
                            f"{{{f}{'!' + conv if conv else ''}:{spec}}} cannot format {value!r}: {exc}",
                            "use a format spec that fits the values, e.g. {lr:.4g}, or none",
                        )

    def _compare(self, c: Compare, bad: Any) -> None:
        target = self.variables.get(c.variable)
        if target is None:
            bad(
                ("compare", "variable"),
                f"{c.variable!r} is not a variable",
                f"use one of {', '.join(self.variables)}",
            )
        else:
            levels = treatment_levels(c, target)
            for key, value in [("baseline", c.baseline)] + [("treatment", t) for t in levels]:
                if isinstance(target, Choice) and value not in target.choice:
                    bad(
                        ("compare", key),
                        f"{value!r} is not one of {target.choice}",
                        "use one of the variable's choices",
                    )
            if c.baseline in levels:
                bad(
                    ("compare", "treatment"),
                    f"the baseline {c.baseline!r} is also a treatment",
                    "compare the baseline against other levels only",
                )
        metric = c.metric if c.metric is not None else next(iter(self.metrics))
        if metric not in self.metrics:
            bad(("compare", "metric"), f"{metric!r} is not a metric", f"use one of {', '.join(self.metrics)}")
        for block in c.within:
            body = self.variables.get(block)
            if body is None or block == c.variable or _conditional(body):
                why = (
                    "is not a variable"
                    if body is None
                    else "is the compared variable"
                    if block == c.variable
                    else "is conditional"
                )
                bad(
                    ("compare", "within"),
                    f"{block!r} {why}",
                    "block on variables every trial has, other than compare.variable",
                )


def _conditional(body: Any) -> bool:
    return bool(getattr(body, "when", None))


def treatment_levels(c: Compare, target: Any) -> tuple[Any, ...]:
    """The treatment's levels; () for all (unless all is itself a level of the variable)."""
    if c.treatment == "all" and not (isinstance(target, Choice) and "all" in target.choice):
        return ()
    return tuple(c.treatment) if isinstance(c.treatment, list) else (c.treatment,)


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors check a sweep file against (``sweeper schema``, ``sweep.schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Sweep.model_json_schema(),
        "title": "sweeper sweep file",
    }
