"""The sweep file's vocabulary: the strict base model, the rule type, and every checked value a block
is made of (durations, amounts of memory, variable bounds, Slurm patterns, ...).

:mod:`sweeper.spec.schema` composes these into the file format; here is how each value is read and
refused. A rule broken by one value raises :func:`rule`, worded for the user.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable
from typing import Annotated, Any, ClassVar

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
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError

from sweeper.spec.experiment import NAME_RE, RESERVED

MAX_REPLICATES = 10_000  # per trial, all seed factors together
INT64 = 2**63
EXACT_INT = 2**53  # int ranges: whole numbers a float holds exactly (Optuna samples through floats)
Loc = tuple[str | int, ...]


def rule(problem: str, fix: str) -> PydanticCustomError:
    """A broken rule, worded for the user; :mod:`~sweeper.spec.messages` adds file, line and field."""
    return PydanticCustomError("sweeper", "{problem}", {"problem": problem, "fix": fix})


def issue(loc: Loc, error: PydanticCustomError, value: Any = None) -> InitErrorDetails:
    return InitErrorDetails(type=error, loc=loc, input=value)


def kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def hint(word: Any, options: list[str]) -> str:
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
            raise rule(f"expected {shape}, got {kind(data)}", fix.replace("{keys}", ", ".join(keys)))
        unknown = [k for k in data if k not in keys]
        if not unknown:
            return handler(data)
        meant = set()
        issues = []
        for key in unknown:
            close = hint(key, keys)
            meant.add(close.split("'")[1] if close else None)
            issues.append(issue((key,), rule("unknown key", f"{close}valid keys here: {', '.join(keys)}")))
        try:
            handler({k: v for k, v in data.items() if k in keys})
        except ValidationError as exc:
            issues += reraised(
                e
                for e in exc.errors()
                if not (e["type"] == "missing" and e["loc"][-1] in meant)  # the typo said it already
            )
        raise ValidationError.from_exception_data(cls.__name__, issues)


def reraised(errors: Iterable[ErrorDetails]) -> list[InitErrorDetails]:
    """A ValidationError's errors as details a new one can hold, alongside others."""
    return [
        issue(e["loc"], PydanticCustomError(e["type"], e["msg"], e.get("ctx")), e["input"]) for e in errors
    ]


def fail_all(title: str, issues: list[InitErrorDetails]) -> None:
    if issues:
        raise ValidationError.from_exception_data(title, issues)


def scalar(value: Any) -> Any:
    if isinstance(value, bool | str) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, int):
        if -INT64 <= value < INT64:
            return value
        raise rule(f"{value} is out of range for a table column", "use a whole number within ±2**63")
    raise rule(
        f"{kind(value)} is not text, a number or a boolean",
        "write a single value (map richer objects to it inside your objective)",
    )


Scalar = Annotated[Any, PlainValidator(scalar), WithJsonSchema({"type": ["string", "number", "boolean"]})]


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


def identifier(what: str) -> Any:
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


# --------------------------------------------------------------------------------------- variables
def pair(kind: str) -> Any:
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


def range_issues(
    kind: str, low: float, high: float, step: float | None, *, log: bool
) -> list[InitErrorDetails]:
    """What is wrong with an int or float range, each mistake at its key."""
    issues = []
    if low > high:
        issues.append(issue((kind,), rule(f"low > high ({low} > {high})", "swap the bounds: [low, high]")))
    elif not math.isfinite(high - low):
        issues.append(issue((kind,), rule("the range is too wide to sample", "narrow it, or use log: true")))
    if log and low <= 0:
        issues.append(
            issue(
                ("log",),
                rule(f"a log range needs low > 0, got {low}", "raise low above zero or drop log: true"),
            )
        )
    if log and step is not None:
        issues.append(
            issue(("step",), rule("step and log cannot be combined (Optuna refuses it)", "drop one of them"))
        )
    return issues


def distinct(values: list[Any]) -> list[Any]:
    """Each value once, also as text (1 and '1' are one column value); linear, for choices of 100,000."""
    by_value: dict[Any, Any] = {}
    by_text: dict[str, Any] = {}
    for a in values:
        b = by_value.get(a, by_text.get(str(a), distinct))
        if b is not distinct:
            same = (
                "is listed twice" if repr(a) == repr(b) else f"and {b!r} are the same in a table or a command"
            )
            raise rule(f"{a!r} {same}", "list each value once, all of one type (all text or all numbers)")
        by_value.setdefault(a, a)
        by_text.setdefault(str(a), a)
    return values


def variable_form(body: Any) -> str | None:
    if isinstance(body, dict):
        kinds = [k for k in ("choice", "int", "float", "const") if k in body]
        return f"@{kinds[0]}" if len(kinds) == 1 else None
    return None if isinstance(body, list) else "@value"


# ---------------------------------------------------------------------------- metrics, replicates
def metric_list(value: Any) -> Any:
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


def factors(value: dict[str, int]) -> dict[str, int]:
    total = math.prod(value.values())
    if total > MAX_REPLICATES:
        raise rule(
            f"{' x '.join(map(str, value.values()))} = {total} replicates per trial"
            f" is more than {MAX_REPLICATES}",
            "use fewer levels per factor (each trial runs every combination)",
        )
    return value


def replicates_form(value: Any) -> str | None:
    if isinstance(value, dict) and {"min", "max"} & set(value):
        return "@racing" if set(value) <= {"min", "max"} else None
    return "@factors" if isinstance(value, dict) else "@count"


def pruner_form(value: Any) -> str | None:
    method = value.get("method") if isinstance(value, dict) else value
    return f"@{method}" if isinstance(method, str) else None


# ---------------------------------------------------------------------------- resources, components
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


def amount(value: Any, name: str) -> Any:
    """An amount of ``value``'s type, or cases of it that depend on the variables
    (``[{when: {model: big}, value: 2}, {value: 1}]``)."""
    model = type(
        f"{name}Case",
        (Block,),
        {
            "__annotations__": {"when": When | None, "value": value},
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

    def form(given: Any) -> str:
        return "@cases" if isinstance(given, list) else "@case" if isinstance(given, dict) else "@plain"

    return Annotated[
        Annotated[value, Tag("@plain")]
        | Annotated[model, Tag("@case")]
        | Annotated[Annotated[list[model], Field(min_length=1)], Tag("@cases")],  # type: ignore[valid-type]
        Discriminator(form),
    ]


def plain(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise rule("must be plain data (text, numbers, lists, mappings)", "write it as YAML data") from None
    return value


def path_only(value: Any) -> Any:
    return {"path": value} if isinstance(value, str) else value


# ----------------------------------------------------------------------------------------- compare
def levels(value: Any) -> Any:
    if value is None:  # left empty: every other level, as when left out
        return "all"
    if isinstance(value, list):
        if not value:
            raise rule("empty list", "name one or more levels, or write all")
        return [scalar(v) for v in value]
    return scalar(value)


def confirm_count(value: Any) -> Any:
    return {"replicates": value} if isinstance(value, int) and not isinstance(value, bool) else value


SPLIT = {
    "type": "object",
    "properties": {
        "test": {"type": "number", "exclusiveMinimum": 0, "description": "The test set's size (> 0)."},
        "train": {"type": "number", "exclusiveMinimum": 0, "description": "The training set's, same unit."},
    },
    "required": ["test", "train"],
    "additionalProperties": False,
}


def split(value: Any) -> Any:
    """``{test: 30, train: 120}``: the correlation of cross-validation folds derived from the split, test
    size / total size (Nadeau and Bengio 2003, as Benavoli et al. 2017 use it)."""
    if not isinstance(value, dict):
        return value
    fix = "write {test: 30, train: 120} (the split's sizes, in one unit) or a number 0 <= c < 1"
    if set(value) != {"test", "train"}:
        raise rule(f"the split names {sorted(map(str, value))}, not test and train", fix)
    sizes = [value["test"], value["train"]]
    if not all(isinstance(x, int | float) and not isinstance(x, bool) and x > 0 for x in sizes):
        raise rule(f"test and train must be positive sizes, not {sizes}", fix)
    return sizes[0] / (sizes[0] + sizes[1])


def listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


# ------------------------------------------------------------------------------------------- slurm
NAMES = re.compile(r"^[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*$")  # partition, account, qos lists
MEM = re.compile(r"^\d+[KMGT]?$")
GPUS = re.compile(r"^(?:[A-Za-z0-9_.-]+:)?\d+$")  # 2, or a100:2
CONSTRAINT = re.compile(r"^[A-Za-z0-9_.:,|&!()\[\]*-]+$")
SBATCH_ARG = re.compile(r"^--[a-z][a-z-]*(?:=[A-Za-z0-9_.:,|&!()\[\]*/@%+=-]+)?$")
EXAMPLES = {
    "partition": "gpu",
    "account": "proj-123",
    "qos": "normal",
    "time": "2:00:00",
    "mem_per_node": "64G",
    "gpus_per_node": "4 or a100:4",
    "constraint": "a100",
}


def sbatch_value(key: str, pattern: re.Pattern[str]) -> Any:
    """Text that goes into an ``#SBATCH`` line as is (sbatch reads it outside any shell quoting)."""

    def check(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and key in ("time", "gpus_per_node"):
            value = str(value)  # time: minutes, as sbatch reads a bare number
        if not isinstance(value, str) or not value.strip():
            raise rule(f"expected text, got {value!r}", f"write e.g. {key}: {EXAMPLES[key]}")
        value = value.strip()
        if not (key == "time" and value.upper() in ("UNLIMITED", "INFINITE")) and not pattern.match(value):
            raise rule(
                f"{value!r} is not a valid {key.replace('_', ' ')}",
                f"write e.g. {key}: {EXAMPLES[key]} (no spaces, quotes or shell characters)",
            )
        return str(value)

    return PlainValidator(check, json_schema_input_type=str | int)


def lines(key: str) -> Any:
    def check(value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(s, str) for s in items):
            raise rule(
                f"expected a list of text lines, got {value!r}",
                "write e.g. setup: [module load cuda/12.1, source ~/venv/bin/activate]",
            )
        for arg in items if key == "sbatch" else ():
            if not SBATCH_ARG.match(arg):
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


def underscores(value: Any) -> Any:
    """Slurm keys may be written as sbatch spells them (cpus-per-node)."""
    return {str(k).replace("-", "_"): v for k, v in value.items()} if isinstance(value, dict) else value
