"""The comparison the hypothesis makes (compare:), and the cross-key rules that check it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema

from sweeper.spec.block import MAX_REPLICATES, Block, Scalar, rule, scalar
from sweeper.spec.variables import Choice, conditional


def _levels(value: Any) -> Any:
    if value is None:  # left empty: every other level, as when left out
        return "all"
    if isinstance(value, list):
        if not value:
            raise rule("empty list", "name one or more levels, or write all")
        return [scalar(v) for v in value]
    return scalar(value)


class Confirm(Block):
    """Each arm's top configurations rerun on fresh seeds."""

    replicates: Annotated[int, Field(ge=2, le=MAX_REPLICATES)] = Field(
        description="Fresh seeds per configuration."
    )
    top: Annotated[int, Field(ge=1, le=1000)] = Field(1, description="Configurations per arm.")


def _confirm(value: Any) -> Any:
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


def _correlation(value: Any) -> Any:
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
    correlation: (
        Annotated[
            float,
            Field(ge=0, lt=1),
            BeforeValidator(_correlation),
            WithJsonSchema({"anyOf": [{"type": "number", "minimum": 0, "exclusiveMaximum": 1}, SPLIT]}),
        ]
        | None
    ) = Field(
        None,
        description="Correlation of replicates that share data (cross-validation folds), 0 ≤ c < 1, or the "
        "split it derives from: `{test: 30, train: 120}` gives test / (test + train) = 0.2.",
    )


def treatment_levels(c: Compare, target: Any) -> tuple[Any, ...]:
    """The treatment's levels; () for all (unless all is itself a level of the variable)."""
    if c.treatment == "all" and not (isinstance(target, Choice) and "all" in target.choice):
        return ()
    return tuple(c.treatment) if isinstance(c.treatment, list) else (c.treatment,)


def check_compare(c: Compare, variables: dict[str, Any], metrics: list[str], bad: Any) -> None:
    """The rules across compare: and the rest: its variable, levels, metric and blocks exist and fit."""
    target = variables.get(c.variable)
    if target is None:
        bad(
            ("compare", "variable"),
            f"{c.variable!r} is not a variable",
            f"use one of {', '.join(variables)}",
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
    metric = c.metric if c.metric is not None else next(iter(metrics))
    if metric not in metrics:
        bad(("compare", "metric"), f"{metric!r} is not a metric", f"use one of {', '.join(metrics)}")
    for block in c.within:
        body = variables.get(block)
        if body is None or block == c.variable or conditional(body):
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
