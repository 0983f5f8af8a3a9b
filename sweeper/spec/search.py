"""How the space is searched: metrics, the search block, replicates and the pruner."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Discriminator, Field, Tag, model_validator

from sweeper.spec.block import MAX_REPLICATES, Block, identifier, rule
from sweeper.spec.experiment import Direction, Method
from sweeper.spec.methods import METHODS


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
    dict[Annotated[str, identifier("metric")], Direction],
    BeforeValidator(_metrics, json_schema_input_type=list[dict[str, Direction]] | dict[str, Direction]),
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
    dict[Annotated[str, identifier("seed factor")], Annotated[int, Field(ge=1, le=MAX_REPLICATES)]],
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
