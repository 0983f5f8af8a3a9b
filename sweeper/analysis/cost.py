"""The cost side of a claim: every other metric compared between the same arms, paired the same way.

"A is more accurate but needs far more computation" is the seeds' example conclusion. Each metric
besides the compared one (``duration_s``, which every table has, when there is no other) is tested
on the very trials and seeds the verdict compared. Positive values are compared as ratios: the
geometric-mean ratio treatment / baseline, from a t-interval on the paired log ratios; others as
differences.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeper.analysis.inference import flat, rounding

if TYPE_CHECKING:
    import pandas as pd

TIME_WORDS = ("duration_s", "seconds", "_s", "time", "_sec")


@dataclass(frozen=True, slots=True)
class Cost:
    metric: str
    ratio: bool  # True: estimate is a geometric-mean ratio; False: a mean difference
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    treatment_mean: float
    baseline_mean: float
    n: int
    paired: bool
    phrase: str  # "it takes 160x longer (1.48 s vs 0.0092 s, fit_seconds)"


def compare_cost(
    pairs: Sequence[tuple[pd.Series, pd.Series]], metric: str, alpha: float = 0.05
) -> Cost | None:
    """One metric of the treatment against the baseline, over every setting's (treatment, baseline)
    per-seed values; None when either arm has no finite value."""
    import numpy as np
    from scipy import stats

    da: list[float] = []
    db: list[float] = []
    ua: list[float] = []
    ub: list[float] = []
    for a, b in pairs:
        a, b = a[np.isfinite(a.to_numpy(dtype=float))], b[np.isfinite(b.to_numpy(dtype=float))]
        shared = a.index.intersection(b.index)
        da += a.loc[shared].astype(float).tolist()
        db += b.loc[shared].astype(float).tolist()
        ua += a.astype(float).tolist()
        ub += b.astype(float).tolist()
    if not ua or not ub:
        return None
    paired = len(da) >= 2
    x, y = (np.array(da), np.array(db)) if paired else (np.array(ua), np.array(ub))
    ratio = bool((x > 0).all() and (y > 0).all())
    fx, fy = (np.log(x), np.log(y)) if ratio else (x, y)
    level = 1 - alpha
    if paired:
        d = fx - fy
        n = len(d)
        if flat(d, fx, fy):
            mean = float(d.mean())  # every seed gives the same ratio (or difference): nothing to test
            est = lo = hi = mean if abs(mean) > rounding(fx, fy) else 0.0
            p = 0.0 if est != 0 else 1.0
        else:
            res = stats.ttest_rel(fx, fy)
            ci = res.confidence_interval(level)
            est, lo, hi, p = float(d.mean()), float(ci.low), float(ci.high), float(res.pvalue)
    else:
        n = min(len(fx), len(fy))
        if n < 2:
            est, lo, hi, p = float(fx.mean() - fy.mean()), math.nan, math.nan, math.nan
        else:
            res = stats.ttest_ind(fx, fy, equal_var=False)
            ci = res.confidence_interval(level)
            est, lo, hi, p = float(fx.mean() - fy.mean()), float(ci.low), float(ci.high), float(res.pvalue)
    if ratio:
        est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
    significant = bool(math.isfinite(p) and p < alpha)
    mean_a, mean_b = float(np.mean(ua)), float(np.mean(ub))
    return Cost(
        metric,
        ratio,
        est,
        lo,
        hi,
        p,
        significant,
        mean_a,
        mean_b,
        n,
        paired,
        phrase(metric, ratio, est, mean_a, mean_b),
    )


def _g(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def phrase(metric: str, ratio: bool, estimate: float, a: float, b: float) -> str:
    """The cost in words: ``it takes 160x longer (1.48 s vs 0.0092 s, fit_seconds)``."""
    timed = any(w in metric.lower() for w in TIME_WORDS)
    unit = " s" if timed else ""
    values = f"{_g(a)}{unit} vs {_g(b)}{unit}"
    if not ratio:
        side = "higher" if estimate > 0 else "lower"
        return f"its {metric} is {side} by {_g(abs(estimate))} ({values})"
    times = estimate if estimate >= 1 else 1 / estimate
    if timed:  # "it takes" does not name the metric: the values do
        return f"it takes {_g(times)}x {'longer' if estimate >= 1 else 'less time'} ({values}, {metric})"
    return f"its {metric} is {_g(times)}x {'higher' if estimate >= 1 else 'lower'} ({values})"
