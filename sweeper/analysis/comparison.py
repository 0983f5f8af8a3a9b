"""What the hypothesis test found: one ``Comparison`` per treatment (and setting), and the ``Verdict``
the report, ``report --json`` and MLflow show; ``to_dict`` is its JSON, NaN-free."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sweeper.analysis.aggregate import SEARCH

if TYPE_CHECKING:
    from sweeper.analysis.across import Across
    from sweeper.analysis.cost import Cost
    from sweeper.analysis.rope import Rope

ALPHA = "\N{GREEK SMALL LETTER ALPHA}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment level against the baseline (in one setting), with its verdict."""

    treatment: Any
    baseline: Any
    metric: str
    direction: str
    supported: bool
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    test: str
    reason: str
    paired: bool
    n: int
    n_treatment: int
    n_baseline: int
    treatment_trial: int | None
    baseline_trial: int | None
    n_needed: int | None
    sentence: str
    warnings: tuple[str, ...] = ()
    cohen_d: float = float("nan")  # effect / spread: d_z when paired, pooled-sd d when not
    setting: str = ""  # "dataset=iris" with within:, else empty
    outcome: str = ""  # supported | not supported | equivalent | inconclusive
    rope: Rope | None = None
    treatment_mean: float = float("nan")
    baseline_mean: float = float("nan")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the report says about the hypothesis; ``to_dict`` is the JSON of ``report --json``."""

    hypothesis: str
    variable: str
    metric: str
    alpha: float
    arms: str
    arms_note: str
    comparisons: tuple[Comparison, ...]
    holm: bool
    indistinguishable: tuple[int, ...] = ()  # trials no test can tell from the best trial
    best_trial: int | None = None
    notes: tuple[str, ...] = field(default=())
    within: tuple[str, ...] = ()
    across: Across | None = None
    costs: tuple[Cost, ...] = ()
    stage: str = SEARCH  # the stage the verdict rests on
    search: tuple[Comparison, ...] = ()  # with confirm: the same comparisons on the search stage
    rope: float | None = None
    partial: int = 0  # trials still missing replicates, left out

    @property
    def main(self) -> Comparison:
        """The comparison the headline reports: the only one, or the most favourable arm."""
        sign = 1 if self.comparisons[0].direction == "maximize" else -1
        if self.across is not None:
            mine = [c for c in self.comparisons if c.treatment == self.across.treatment]
            return max(mine, key=lambda c: (c.supported, _finite(sign * c.effect)))
        return max(self.comparisons, key=lambda c: (c.supported, _finite(sign * c.effect)))

    @property
    def supported(self) -> bool:
        return self.across.supported if self.across is not None else self.main.supported

    @property
    def outcome(self) -> str:
        if self.across is not None:
            return "supported" if self.across.supported else "not supported"
        return self.main.outcome

    @property
    def sentence(self) -> str:
        if self.across is not None:
            head = self.across.sentence
        elif len(self.comparisons) == 1:
            head = self.main.sentence
        else:
            won = [c for c in self.comparisons if c.supported]
            head = (
                f"{len(won)} of {len(self.comparisons)} arms beat {self.comparisons[0].baseline} "
                f"after Holm's correction"
                if won
                else f"no arm beats {self.comparisons[0].baseline} after Holm's correction"
            )
            head = f"{head}; best arm: {self.main.sentence}"
        costs = [c.phrase for c in self.costs if c.significant]
        return "; ".join([head, *costs])

    def __repr__(self) -> str:
        """One line at a REPL; the fields are there to read (``to_dict`` for all of them)."""
        return f"<Verdict: {self.sentence}>"

    def __str__(self) -> str:
        """What ``sweeper report`` prints: the sentence, then the main comparison's warnings."""
        return "\n".join([self.sentence, *(f"  warning: {w}" for w in self.main.warnings)])

    def _repr_html_(self) -> str:
        from sweeper.analysis.display import verdict_html

        return verdict_html(self)

    def to_dict(self) -> dict[str, Any]:
        main = self.main
        out: dict[str, Any] = {
            "hypothesis": self.hypothesis,
            "supported": self.supported,
            "outcome": self.outcome,
            "sentence": self.sentence,
            "variable": self.variable,
            "treatment": main.treatment,
            "baseline": main.baseline,
            "metric": self.metric,
            "direction": main.direction,
            "alpha": self.alpha,
            "effect": main.effect,
            "ci_low": main.ci_low,
            "ci_high": main.ci_high,
            "cohen_d": main.cohen_d,
            "p_value": main.p_value,
            "p_adjusted": main.p_adjusted,
            "test": main.test,
            "test_reason": main.reason,
            "paired": main.paired,
            "n": main.n,
            "n_needed": main.n_needed,
            "arms": self.arms,
            "arms_note": self.arms_note,
            "holm": self.holm,
            "warnings": list(main.warnings),
            "best_trial": self.best_trial,
            "indistinguishable_from_best": list(self.indistinguishable),
            "notes": list(self.notes),
            "stage": self.stage,
            "within": list(self.within),
            "rope": self.rope,
            "partial_trials": self.partial,
            "across": asdict(self.across) if self.across is not None else None,
            "costs": [asdict(c) for c in self.costs],
            "comparisons": [asdict(c) for c in self.comparisons],
            "search_comparisons": [asdict(c) for c in self.search],
        }
        cleaned: dict[str, Any] = _clean(out)
        return cleaned


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, numpy scalars and tuples become plain Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if all(type(v) is int for v in value):  # the trials indistinguishable from the best: 10^5 of them
            return list(value)
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
