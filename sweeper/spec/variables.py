"""The variables block: choice, int and float ranges, constants, each optionally conditional."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, model_validator

from sweeper.spec.block import EXACT_INT, WHEN, Block, Scalar, When, fail_all, issue, rule


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
        fail_all(type(self).__name__, issues)


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


def conditional(body: Any) -> bool:
    return bool(getattr(body, "when", None))
