"""What every block of the sweep file shares: the strict base model, the rule type, common values."""

from __future__ import annotations

import difflib
import math
import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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
            issues += [
                issue(e["loc"], PydanticCustomError(e["type"], e["msg"], e.get("ctx")), e["input"])
                for e in exc.errors()
                if not (e["type"] == "missing" and e["loc"][-1] in meant)  # the typo said it already
            ]
        raise ValidationError.from_exception_data(cls.__name__, issues)


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
