"""The verdict on the sweep's hypothesis: per setting, across settings, with its cost, on fresh seeds.

How the hypothesis is tested (stated again in every report):
- an arm is one level of ``compare.variable``. With ``arms: best`` (the default) the arm is its best
  trial by mean over replicates -- tuned against tuned, what "model A beats model B" usually means;
  with ``arms: pooled`` it is every trial of the level, averaged per seed.
- with ``confirm:`` the verdict rests on the confirmation stage alone: each arm's chosen
  configurations rerun on fresh seeds the selection never saw (an arm is then the mean of its
  confirmed configurations per seed); the search-stage estimates are kept beside them.
- replicate r of every trial shares its seed, so arms are paired by seed: paired t-test on the
  per-seed differences, or Wilcoxon signed-rank when there are >= 8 pairs and Shapiro-Wilk rejects
  normal differences. Without shared seeds: Welch's t-test, or a permutation test with a bootstrap
  CI under the same normality rule.
- the verdict is two-sided at ``alpha``: supported when the (1 - alpha) CI of the effect (treatment
  minus baseline) excludes zero on the side the metric's direction calls better. Several treatments
  and several settings (``within:``) are corrected with Holm's method; the verdict across settings
  is in :mod:`sweeper.analysis.across`, the cost side in :mod:`sweeper.analysis.cost`, the ROPE in
  :mod:`sweeper.analysis.rope`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.analysis.aggregate import CONFIRM, SEARCH, complete_trials, completed, direction, stage_rows
from sweeper.analysis.inference import POWER, TestResult, compare_samples, holm
from sweeper.analysis.rope import Rope, correlated_interval, correlated_t, outcome
from sweeper.errors import SweeperError
from sweeper.results.values import best_of, raced, trial_means

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis.across import Across
    from sweeper.analysis.cost import Cost
    from sweeper.spec.model import Compare, Experiment

SMALL_N = 5  # fewer replicates than this: warn that the test can only see very large effects
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


def _level_mask(df: pd.DataFrame, variable: str, level: Any) -> pd.Series:
    column = df[variable]
    mask = (column == level).fillna(False).astype(bool)  # NA: the variable is inactive there
    if not mask.any():  # a YAML 1 against a string column, or the other way round
        mask = column.notna() & (column.astype(str) == str(level))
    return mask


def _by_level(done: pd.DataFrame, variable: str) -> dict[Any, pd.DataFrame]:
    """The rows of each level of ``variable``, from one groupby: filtering the whole table once per
    level would cost levels x rows."""
    return dict(iter(done.groupby(variable, sort=False, dropna=True)))


def _level_rows(groups: dict[Any, pd.DataFrame], level: Any, empty: pd.DataFrame) -> pd.DataFrame:
    """``_level_mask``'s rows from the groups: the level itself, else the levels that print like it."""
    import pandas as pd

    exact = [g for k, g in groups.items() if _equal(k, level)]
    if not exact:  # a YAML 1 against a string column, or the other way round
        exact = [g for k, g in groups.items() if str(k) == str(level)]
    if not exact:
        return empty
    return exact[0] if len(exact) == 1 else pd.concat(exact).sort_index()


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. a list level against a scalar: an array, not a bool
        return False


def arm_rows(
    df: pd.DataFrame,
    variable: str,
    level: Any,
    metric: str,
    direction: str,
    arms: str = "best",
    groups: dict[Any, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, int | None, int]:
    """The finished rows standing for one arm: (rows, trial used or None when pooled, trials in arm).

    ``groups`` (``_by_level`` of the finished rows) saves a pass over the table per arm."""
    if groups is None:
        done = completed(df)
        arm = done[_level_mask(done, variable, level)]
    else:
        arm = _level_rows(groups, level, df.iloc[:0])
    rows = arm[arm[metric].notna()]
    if rows.empty:
        return rows, None, 0
    n_trials = int(rows["trial"].nunique())
    if arms == "pooled":
        return rows, None, n_trials
    best = best_of(trial_means(arm, metric), direction)  # the arm's best trial, as status names it
    if best is None:
        return rows.iloc[:0], None, n_trials
    return rows[rows["trial"] == best], best, n_trials


def per_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """An arm's value per seed (the mean over its trials when pooled)."""
    if rows["trial"].nunique() <= 1 and rows["seed"].is_unique:  # one trial: nothing to average
        return rows.set_index("seed")[metric].sort_index()
    return rows.groupby("seed", sort=True)[metric].mean()


def arm_values(
    df: pd.DataFrame, variable: str, level: Any, metric: str, direction: str, arms: str = "best"
) -> tuple[pd.Series, int | None, int]:
    """Per-seed values of one arm: (values indexed by seed, trial used or None, trials in arm)."""
    rows, trial, n = arm_rows(df, variable, level, metric, direction, arms)
    return per_seed(rows, metric), trial, n


def settings(df: pd.DataFrame, within: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per combination of the blocking variables; one unlabelled setting without any."""
    if not within:
        return [("", df)]
    out = []
    for key, rows in df.groupby(list(within), sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        out.append((", ".join(f"{w}={v}" for w, v in zip(within, values, strict=True)), rows))
    return out


@dataclass(slots=True)
class _Arm:
    rows: pd.DataFrame
    values: pd.Series
    trial: int | None


def _arms_in(
    df: pd.DataFrame, compare: Compare, direction: str, levels: Sequence[Any], arms: str
) -> dict[Any, _Arm]:
    out = {}
    done = completed(df)
    groups = _by_level(done, compare.variable)
    for level in [compare.baseline, *levels]:
        rows, trial, _ = arm_rows(done, compare.variable, level, compare.metric, direction, arms, groups)
        out[level] = _Arm(rows, per_seed(rows, compare.metric), trial)
    return out


def _test(arm: pd.Series, base: pd.Series, alpha: float, seed: int) -> TestResult:
    shared = arm.index.intersection(base.index)
    if len(shared) >= 2:
        return compare_samples(
            arm.loc[shared].to_numpy(), base.loc[shared].to_numpy(), paired=True, alpha=alpha, seed=seed
        )
    return compare_samples(arm.to_numpy(), base.to_numpy(), paired=False, alpha=alpha, seed=seed)


def compare_arms(
    df: pd.DataFrame,
    compare: Compare,
    direction: str,
    *,
    levels: Sequence[Any],
    seed: int = 0,
    arms: str | None = None,
) -> tuple[list[Comparison], dict[str, dict[Any, _Arm]]]:
    """Each level against the baseline in each setting; Holm-adjusted over all of them.

    Also returns each setting's arms (the rows and per-seed values each comparison used).
    """
    import numpy as np

    arms = arms or compare.arms
    df = completed(df)
    per_setting = {
        label: _arms_in(rows, compare, direction, levels, arms)
        for label, rows in settings(df, compare.within)
    }
    raw: list[tuple[str, Any, TestResult, _Arm, _Arm]] = []
    for label, got in per_setting.items():
        base = got[compare.baseline]
        for level in levels:
            raw.append(
                (label, level, _test(got[level].values, base.values, compare.alpha, seed), got[level], base)
            )
    many = len(raw) > 1
    adjusted = holm([r[2].p_value for r in raw]) if many else [r[2].p_value for r in raw]
    out = []
    for (label, level, res, arm, base), p_adj in zip(raw, adjusted, strict=True):
        if compare.correlation and res.paired and res.n >= 2:  # widen the CI for correlated folds
            d = _diffs(arm.values, base.values)
            lo, hi = correlated_interval(d, 1 - compare.alpha, compare.correlation)
            res = _with_ci(res, lo, hi)
        supported = decide(res, direction, compare.alpha, p_adj)
        if compare.correlation and res.paired and math.isfinite(res.ci_low):
            supported = supported and (res.ci_low > 0 if direction == "maximize" else res.ci_high < 0)
        rope = (
            correlated_t(_diffs(arm.values, base.values), compare.rope, compare.correlation or 0.0)
            if compare.rope is not None and res.paired
            else None
        )
        result = outcome(res.ci_low, res.ci_high, direction, compare.rope, supported)
        warns = _warnings(res, len(arm.values), len(base.values), supported, compare.alpha)
        sentence = _sentence(
            level,
            compare.baseline,
            compare.metric,
            direction,
            res,
            compare.alpha,
            p_adj,
            supported,
            many,
            result,
            compare.rope,
        )
        out.append(
            Comparison(
                treatment=level,
                baseline=compare.baseline,
                metric=compare.metric,
                direction=direction,
                supported=supported,
                effect=res.effect,
                ci_low=res.ci_low,
                ci_high=res.ci_high,
                p_value=res.p_value,
                p_adjusted=float(p_adj) if np.isfinite(p_adj) else float("nan"),
                test=res.test,
                reason=res.reason,
                paired=res.paired,
                n=res.n,
                n_treatment=len(arm.values),
                n_baseline=len(base.values),
                treatment_trial=arm.trial,
                baseline_trial=base.trial,
                n_needed=res.n_needed,
                sentence=f"{label}: {sentence}" if label else sentence,
                warnings=tuple(warns),
                cohen_d=_standardised(res),
                setting=label,
                outcome=result,
                rope=rope,
                treatment_mean=float(arm.values.mean()) if len(arm.values) else float("nan"),
                baseline_mean=float(base.values.mean()) if len(base.values) else float("nan"),
            )
        )
    return out, per_setting


def _diffs(a: pd.Series, b: pd.Series) -> Any:
    shared = a.index.intersection(b.index)
    return (a.loc[shared] - b.loc[shared]).to_numpy(dtype=float)


def _with_ci(res: TestResult, lo: float, hi: float) -> TestResult:
    from dataclasses import replace

    return replace(res, ci_low=lo, ci_high=hi)


def _standardised(res: TestResult) -> float:
    """Cohen's d of the effect: in units of the seed-to-seed spread the test works against."""
    if not (math.isfinite(res.effect) and math.isfinite(res.spread)) or res.spread == 0:
        return float("nan")
    return res.effect / res.spread


def decide(res: TestResult, direction: str, alpha: float, p_adjusted: float | None = None) -> bool:
    """Supported: significant at alpha (after any correction) and better in the metric's way."""
    p = res.p_value if p_adjusted is None else p_adjusted
    if not math.isfinite(p) or not math.isfinite(res.effect):
        return False
    better = res.effect > 0 if direction == "maximize" else res.effect < 0
    return bool(p < alpha and better)


def fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _sentence(
    treatment: Any,
    baseline: Any,
    metric: str,
    direction: str,
    res: TestResult,
    alpha: float,
    p_adj: float,
    supported: bool,
    many: bool,
    result: str = "",
    rope: float | None = None,
) -> str:
    a = f"{ALPHA} = {alpha:g}" + (f", ROPE ±{rope:g}" if rope is not None else "")
    p_text = f"p = {fmt(p_adj)} Holm-adjusted" if many else f"p = {fmt(res.p_value)}"
    if not math.isfinite(res.effect):
        return f"not supported at {a}: no finished replicates of {treatment} or {baseline}"
    if res.test == "none":
        return (
            f"not supported at {a}: {treatment} vs {baseline} differs by {fmt(res.effect)} "
            f"{metric}, but {res.reason}"
        )
    ci = f"[{fmt(res.ci_low)}, {fmt(res.ci_high)}] ({res.test}, {p_text}, n = {res.n})"
    if res.effect:
        side = "higher" if res.effect > 0 else "lower"
        what = f"{treatment} is {side} than {baseline} by {fmt(abs(res.effect))} {metric} {ci}"
    else:
        what = f"{treatment} and {baseline} have the same mean {metric} (difference 0, CI {ci})"
    if result == "equivalent":
        return f"equivalent at {a}: {what}; the whole CI lies inside the ROPE"
    if supported:
        return f"supported at {a}: {what}"
    if result == "inconclusive":
        return f"inconclusive at {a}: {what}; the CI reaches outside the ROPE without excluding zero"
    better = "higher" if direction == "maximize" else "lower"
    p = p_adj if math.isfinite(p_adj) else res.p_value
    if p < alpha:
        return f"not supported at {a}: {what}, but {better} is better"
    return f"not supported at {a}: {what}; the difference is not significant"


def _warnings(res: TestResult, na: int, nb: int, supported: bool, alpha: float) -> list[str]:
    out = []
    if min(na, nb) == 0:
        out.append(
            "an arm has no finished replicate: nothing to compare; the failed runs' "
            "errors are in the table's error column (sweeper.load(DIR))"
        )
    elif res.n < 2:
        out.append(f"only {res.n} replicate(s) per arm: no test is possible; set replicates: 5 or more")
    elif res.n < SMALL_N:
        out.append(
            f"n = {res.n} is too small for the test to mean much: it can only detect "
            f"differences many times the seed-to-seed spread; use replicates: {SMALL_N} "
            "or more"
        )
    if res.n_needed is not None and res.n_needed > res.n:
        out.append(
            f"about {res.n_needed} replicates per arm would detect a difference of "
            f"{fmt(abs(res.effect))} with {POWER:.0%} power at {ALPHA} = {alpha:g} "
            f"(observed spread {fmt(res.spread)}); this run has {res.n}"
        )
    elif res.n_needed is None and res.test not in ("none", "none (no spread)") and not supported:
        out.append(
            "the observed difference is too small against its spread for any practical "
            "number of replicates to show it"
        )
    if na != nb and res.paired:
        out.append(
            f"the arms have {na} and {nb} finished replicates; only the {res.n} shared seeds are compared"
        )
    return out


def treatment_levels(df: pd.DataFrame, spec: Experiment, compare: Compare) -> list[Any]:
    """The treatments: as named, or every level of the variable but the baseline."""
    if isinstance(compare.treatment, tuple):
        return list(compare.treatment)
    if compare.treatment is not None:
        return [compare.treatment]
    var = spec.variable(compare.variable)
    if var.kind == "choice":
        levels = list(var.choices)
    else:
        levels = sorted(completed(df)[compare.variable].dropna().unique().tolist())
    return [lv for lv in levels if str(lv) != str(compare.baseline)]


def arms_note(compare: Compare, comparisons: Sequence[Comparison], df: pd.DataFrame, stage: str) -> str:
    if stage == CONFIRM:
        top = compare.confirm.top if compare.confirm is not None else 1
        return (
            f"The verdict rests on the confirmation stage alone: each level's {top} best search "
            f"configuration(s){' per setting' if compare.within else ''} rerun on fresh seeds that the "
            "selection never saw (an arm is the mean of its confirmed configurations on each seed), so the "
            "winner's curse of picking the best trial cannot flatter it; the search-stage estimates "
            "stand beside them."
        )
    if compare.arms == "pooled":
        return (
            f"Each level of {compare.variable} is represented by all of its trials, averaged "
            "per seed (arms: pooled): the effect is over the whole explored space of the other "
            "variables, as the search sampled it."
        )
    done = completed(df)
    groups = _by_level(done, compare.variable)
    many = any(
        int(_level_rows(groups, lv, done.iloc[:0])["trial"].nunique()) > 1
        for lv in [compare.baseline, *(c.treatment for c in comparisons)]
    )
    text = (
        f"Each level of {compare.variable} is represented by its best trial (highest mean "
        f"{compare.metric} over its replicates; arms: best), so the comparison is tuned "
        "against tuned, paired by seed."
    )
    if many:
        text += (
            " Picking the best of several trials on the same replicates flatters the level "
            "with more trials (winner's curse); add `confirm: 10` to compare:, which reruns the "
            "chosen configurations on fresh seeds and bases the verdict on those, or use arms: pooled."
        )
    return text


def hypothesis_verdict(df: pd.DataFrame, spec: Experiment, seed: int = 0) -> Verdict | None:
    """The verdict on the sweep's ``compare:``; None when the sweep states no comparison."""
    from sweeper.analysis.best import best_vs_rest

    compare = spec.compare
    if compare is None:
        return None
    missing = [c for c in (compare.variable, compare.metric, *compare.within) if c not in df.columns]
    if missing:
        raise SweeperError(
            f"compare: the trial table has no column {', '.join(map(repr, missing))}; "
            "it was written by another sweep file"
        )
    metric_dir = direction(spec, compare.metric)
    levels = treatment_levels(df, spec, compare)
    if not levels:
        raise SweeperError(
            f"compare: {compare.variable} has no level besides the baseline {compare.baseline!r} to compare"
        )
    finished, partial = complete_trials(df, spec)
    search = raced(stage_rows(finished, SEARCH), spec, (compare.variable, *compare.within))
    confirmed = completed(stage_rows(finished, CONFIRM))
    stage = CONFIRM if not confirmed.empty else SEARCH
    if stage == CONFIRM:
        comparisons, per_setting = compare_arms(
            confirmed, compare, metric_dir, levels=levels, seed=seed, arms="pooled"
        )
        searched, _ = compare_arms(search, compare, metric_dir, levels=levels, seed=seed)
    else:
        comparisons, per_setting = compare_arms(search, compare, metric_dir, levels=levels, seed=seed)
        searched = []
    best, same = best_vs_rest(df, spec, compare.metric, compare.alpha)
    notes = []
    if len(comparisons) > 1:
        notes.append(
            f"{len(comparisons)} comparisons"
            + (f" ({len(levels)} treatment(s) x {len(per_setting)} settings)" if compare.within else "")
            + f": p-values are Holm-adjusted (family-wise error at {ALPHA}); CIs are not adjusted."
        )
    if partial:
        notes.append(
            f"{partial} trial(s) still miss replicates (the sweep is running, or was stopped): they are "
            "left out until all their replicates have finished."
        )
    if stage == SEARCH and compare.confirm is not None:
        notes.append(
            "compare: asks for a confirmation stage, but no confirmation run has finished yet: this "
            "verdict rests on the search stage, with its winner's curse."
        )
    across = None
    treatment = _headline_treatment(per_setting, compare, levels, metric_dir)
    if compare.within and len(per_setting) >= 2:
        from sweeper.analysis.across import across as across_settings

        across = across_settings(
            {s: {lv: a.values for lv, a in got.items()} for s, got in per_setting.items()},
            treatment=treatment,
            baseline=compare.baseline,
            arms=[compare.baseline, *levels],
            direction=metric_dir,
            alpha=compare.alpha,
            seed=seed,
        )
        if across is not None:
            across = _with_sentence(across, compare, comparisons)
    costs = _costs(spec, compare, per_setting, treatment)
    return Verdict(
        hypothesis=spec.hypothesis,
        variable=compare.variable,
        metric=compare.metric,
        alpha=compare.alpha,
        arms=compare.arms if stage == SEARCH else "confirmed",
        arms_note=arms_note(compare, comparisons, search, stage),
        comparisons=tuple(comparisons),
        holm=len(comparisons) > 1,
        indistinguishable=tuple(same),
        best_trial=best,
        notes=tuple(notes),
        within=compare.within,
        across=across,
        costs=tuple(costs),
        stage=stage,
        search=tuple(searched),
        rope=compare.rope,
        partial=partial,
    )


def _headline_treatment(
    per_setting: dict[str, dict[Any, _Arm]], compare: Compare, levels: Sequence[Any], metric_dir: str
) -> Any:
    """The treatment the headline names: the only one, or the best on average normalised score."""
    if len(levels) == 1:
        return levels[0]
    from sweeper.analysis.across import normalised

    scores = normalised(
        {s: {lv: a.values for lv, a in got.items() if len(a.values)} for s, got in per_setting.items()},
        metric_dir,
    )

    def mean_score(level: Any) -> float:
        got = [float(v[level].mean()) for v in scores.values() if level in v]
        return sum(got) / len(got) if got else -math.inf

    return max(levels, key=mean_score)


def _with_sentence(across: Across, compare: Compare, comparisons: Sequence[Comparison]) -> Across:
    from dataclasses import replace

    a = f"{ALPHA} = {compare.alpha:g}"
    noun = f"{compare.within[0]}s" if len(compare.within) == 1 else "settings"
    t, b = across.treatment, across.baseline
    sig = sum(1 for c in comparisons if c.treatment == t and c.supported)
    iqm = {g.arm: g for g in across.iqm}
    if across.test == "Friedman":
        rank = dict(across.ranks)
        ph = next(p for p in across.posthoc if p.arm == t)
        test = (
            f"Friedman p = {fmt(across.p_value)}; average rank {rank[t]:.2f} vs {rank[b]:.2f}, "
            f"CD = {across.cd:.2f}; Holm p = {fmt(ph.p_holm)}"
        )
    else:
        test = f"Wilcoxon signed-rank over the {noun}' effects, p = {fmt(across.p_value)}"
    word = "supported" if across.supported else "not supported"
    text = (
        f"{word} at {a} across {across.n_settings} {noun}: {t} is better than {b} on {across.better} of "
        f"{across.n_settings} {noun} ({sig} significantly after Holm; {test}); IQM of normalised "
        f"{compare.metric} {iqm[t].iqm:.2f} [{iqm[t].ci_low:.2f}, {iqm[t].ci_high:.2f}] vs "
        f"{iqm[b].iqm:.2f} [{iqm[b].ci_low:.2f}, {iqm[b].ci_high:.2f}], "
        f"P({t} > {b}) = {across.poi:.2f} [{across.poi_low:.2f}, {across.poi_high:.2f}]"
    )
    return replace(across, sentence=text)


def _costs(
    spec: Experiment, compare: Compare, per_setting: dict[str, dict[Any, _Arm]], treatment: Any
) -> list[Cost]:
    """Every other metric (``duration_s`` when there is none) on the very rows the verdict compared."""
    from sweeper.analysis.cost import compare_cost

    some = next(iter(per_setting.values()))[compare.baseline].rows
    names = [m.name for m in spec.metrics if m.name != compare.metric and m.name in some.columns]
    if not names and "duration_s" in some.columns:
        names = ["duration_s"]
    out = []
    for name in names:
        pairs = [
            (per_seed(got[treatment].rows, name), per_seed(got[compare.baseline].rows, name))
            for got in per_setting.values()
        ]
        cost = compare_cost(pairs, name, compare.alpha)
        if cost is not None:
            out.append(cost)
    return out


def verdict(path: str | Path) -> Verdict | None:
    """The verdict on a results folder's hypothesis (None when its sweep has no ``compare:``)."""
    from sweeper.results.table import load, read_spec

    return hypothesis_verdict(load(path), read_spec(path))
