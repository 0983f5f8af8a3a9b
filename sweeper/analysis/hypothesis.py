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
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweeper.analysis.aggregate import CONFIRM, SEARCH, complete_trials, completed, direction, stage_rows
from sweeper.analysis.arms import Arm, arms_in, by_level, level_rows, per_seed, settings
from sweeper.analysis.comparison import ALPHA, Comparison, Verdict
from sweeper.analysis.inference import NO_SPREAD, POWER, TestResult, compare_samples, holm
from sweeper.analysis.rope import correlated_interval, correlated_t, outcome
from sweeper.errors import SweeperError
from sweeper.results.values import raced

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis.across import Across
    from sweeper.analysis.cost import Cost
    from sweeper.spec.experiment import Compare, Experiment

SMALL_N = 5  # fewer replicates than this: warn that the test can only see very large effects


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
) -> tuple[list[Comparison], dict[str, dict[Any, Arm]]]:
    """Each level against the baseline in each setting; Holm-adjusted over all of them.

    Also returns each setting's arms (the rows and per-seed values each comparison used).
    """
    import numpy as np

    arms = arms or compare.arms
    df = completed(df)
    per_setting = {
        label: arms_in(rows, compare, direction, levels, arms) for label, rows in settings(df, compare.within)
    }
    raw: list[tuple[str, Any, TestResult, Arm, Arm]] = []
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
    elif res.n_needed is None and res.test not in ("none", NO_SPREAD) and not supported:
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
    groups = by_level(done, compare.variable)
    many = any(
        int(level_rows(groups, lv, done.iloc[:0])["trial"].nunique()) > 1
        for lv in [compare.baseline, *(c.treatment for c in comparisons)]
    )
    best = "highest" if comparisons and comparisons[0].direction == "maximize" else "lowest"
    text = (
        f"Each level of {compare.variable} is represented by its best trial ({best} mean "
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
    per_setting: dict[str, dict[Any, Arm]], compare: Compare, levels: Sequence[Any], metric_dir: str
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
    spec: Experiment, compare: Compare, per_setting: dict[str, dict[Any, Arm]], treatment: Any
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


def verdict(path: str | os.PathLike[str]) -> Verdict | None:
    """The verdict on a results folder's hypothesis (None when its sweep has no ``compare:``)."""
    from sweeper.results.table import load, read_spec

    path = os.fspath(path)  # a launch's result stands for its folder
    return hypothesis_verdict(load(path), read_spec(path))
