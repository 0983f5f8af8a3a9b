"""Two-sample statistics for comparing arms: intervals, the paired / unpaired tests, power, Holm.

Pure functions on numpy arrays, checked against scipy.stats in tests/unit/test_analysis.py and for
calibration (CI coverage, error rates) in tests/unit/test_stats_calibration.py. The choice of test:
paired by seed -> paired t-test, or Wilcoxon signed-rank when there are >= 8 pairs and Shapiro-Wilk
rejects normal differences; unpaired -> Welch's t-test, or a permutation test with a bootstrap CI
under the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

LEVEL = 0.95  # confidence level of the summary table's intervals
NORMALITY_MIN_N = 8  # below this Shapiro-Wilk has no power; the t-test is the honest default
POWER = 0.8
BOOTSTRAP_RESAMPLES = 4999

NO_SPREAD = "no spread"  # the test of a difference every seed gives alike: none applies


def t_interval(mean: Any, std: Any, n: Any, level: float = LEVEL) -> tuple[Any, Any]:
    """Student-t interval of a mean; NaN where n < 2 (one replicate says nothing about spread).

    ``scipy.special.stdtrit`` is what ``scipy.stats.t.ppf`` computes, without importing scipy.stats
    (seconds on a busy machine, and ``sweeper table`` needs nothing else from it)."""
    import numpy as np
    from scipy.special import stdtrit

    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = stdtrit(np.where(n > 1, n - 1, np.nan), 0.5 + level / 2)
        half = t * np.asarray(std) / np.sqrt(n)
    return np.asarray(mean) - half, np.asarray(mean) + half


@dataclass(frozen=True, slots=True)
class TestResult:
    """One comparison of two samples: the effect (a minus b), its CI and a p-value."""

    test: str
    reason: str
    paired: bool
    n: int  # pairs, or the smaller sample when unpaired
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    spread: float  # sd of the differences (paired) or pooled sd (unpaired), for power
    n_needed: int | None  # replicates per arm for 80% power at the observed effect


def rounding(*values: np.ndarray) -> float:
    """The rounding error of arithmetic on values this large: a spread or a difference under it is
    made of nothing else."""
    import numpy as np

    return 4 * float(np.finfo(float).eps) * max(float(np.abs(v).max()) for v in values)


def flat(x: np.ndarray, *sources: np.ndarray) -> bool:
    """Every value equal up to the rounding error of the values it was computed from (``sources``,
    x itself when none): such a spread tests nothing (scipy warns of catastrophic cancellation)."""
    return float(abs(x - x.mean()).max()) <= rounding(*(sources or (x,)))


def compare_samples(
    a: np.ndarray, b: np.ndarray, *, paired: bool, alpha: float = 0.05, robust: bool = True, seed: int = 0
) -> TestResult:
    """Test a against b; CI at level 1 - alpha. ``robust=False`` keeps to the t-tests (fast)."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    level = 1 - alpha
    nan = float("nan")
    if paired:
        d = a - b
        n = len(d)
        effect = float(d.mean()) if n else nan
        spread = float(d.std(ddof=1)) if n > 1 else nan
        if n < 2:
            return TestResult(
                "none",
                "a paired test needs at least 2 shared seeds",
                True,
                n,
                effect,
                nan,
                nan,
                nan,
                spread,
                None,
            )
        if not np.isfinite(spread) or flat(d, a, b):
            return _exact(True, a, b, effect)
        needed = _n_needed(abs(effect), spread, alpha, paired=True)
        if robust and n >= NORMALITY_MIN_N and stats.shapiro(d).pvalue < 0.05:
            p = float(stats.wilcoxon(d).pvalue)
            lo, hi = _bootstrap_ci(lambda x, axis: x.mean(axis), (d,), level, seed, paired=True)
            why = (
                f"paired by seed; Shapiro-Wilk rejects normal differences (n = {n}), so a "
                "rank test; CI by bootstrap"
            )
            return TestResult("Wilcoxon signed-rank", why, True, n, effect, lo, hi, p, spread, needed)
        res = stats.ttest_rel(a, b)
        ci = res.confidence_interval(level)
        why = "paired by seed (replicates share seeds, so the seed's effect cancels); " + (
            "differences pass Shapiro-Wilk"
            if robust and n >= NORMALITY_MIN_N
            else f"too few pairs (n = {n} < {NORMALITY_MIN_N}) to judge normality, and a rank "
            "test cannot reach significance that small"
        )
        return TestResult(
            "paired t-test",
            why,
            True,
            n,
            effect,
            float(ci.low),
            float(ci.high),
            float(res.pvalue),
            spread,
            needed,
        )
    na, nb = len(a), len(b)
    n = min(na, nb)
    effect = float(a.mean() - b.mean()) if na and nb else nan
    if n < 2:
        return TestResult(
            "none",
            "Welch's t-test needs at least 2 replicates per arm",
            False,
            n,
            effect,
            nan,
            nan,
            nan,
            nan,
            None,
        )
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    spread = float(math.sqrt((sa**2 + sb**2) / 2))
    if flat(a) and flat(b):
        return _exact(False, a, b, effect)
    needed = _n_needed(abs(effect), spread, alpha, paired=False)
    if robust and n >= NORMALITY_MIN_N and min(stats.shapiro(x).pvalue for x in (a, b)) < 0.05:
        res = stats.permutation_test(
            (a, b),
            _mean_diff,
            n_resamples=BOOTSTRAP_RESAMPLES,
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
        lo, hi = _bootstrap_ci(_mean_diff, (a, b), level, seed, paired=False)
        why = (
            "no shared seeds, and Shapiro-Wilk rejects normal values, so a permutation test "
            "on the difference of means; CI by bootstrap"
        )
        return TestResult(
            "permutation test", why, False, n, effect, lo, hi, float(res.pvalue), spread, needed
        )
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(level)
    return TestResult(
        "Welch's t-test",
        "no shared seeds, so unpaired; Welch's test does not assume equal variances",
        False,
        n,
        effect,
        float(ci.low),
        float(ci.high),
        float(res.pvalue),
        spread,
        needed,
    )


def _exact(paired: bool, a: np.ndarray, b: np.ndarray, effect: float) -> TestResult:
    """Every seed gives the same difference: nothing to test, the difference is what it is (none,
    when it is of the size of the values' rounding error)."""
    if abs(effect) <= rounding(a, b):
        effect = 0.0
    p = 1.0 if effect == 0 else 0.0
    return TestResult(
        NO_SPREAD,
        "every replicate gives the same difference, up to rounding (the seed's effect cancels, or the "
        "objective ignores its seed), so no test applies",
        paired,
        min(len(a), len(b)),
        effect,
        effect,
        effect,
        p,
        0.0,
        None,
    )


def _mean_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    import numpy as np

    return np.asarray(x.mean(axis) - y.mean(axis))


def _bootstrap_ci(
    stat: Any, data: tuple[np.ndarray, ...], level: float, seed: int, *, paired: bool
) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    res = stats.bootstrap(
        data,
        stat,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=level,
        paired=paired,
        vectorized=True,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def power(effect: float, spread: float, n: Any, alpha: float = 0.05, *, paired: bool = True) -> Any:
    """Power of the two-sided t-test to detect ``effect`` with per-arm n (noncentral t)."""
    import numpy as np
    from scipy import stats

    n = np.asarray(n, dtype=float)
    if paired:
        df, nc = n - 1, effect / spread * np.sqrt(n)
    else:
        df, nc = 2 * n - 2, effect / (spread * np.sqrt(2 / n))
    crit = stats.t.ppf(1 - alpha / 2, df)
    with np.errstate(invalid="ignore"):
        p = stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc)
    # scipy's nct returns NaN for some large df/nc; the normal approximation is exact enough there
    approx = stats.norm.sf(crit - nc) + stats.norm.cdf(-crit - nc)
    return np.where(np.isfinite(p), p, approx)


def _n_needed(effect: float, spread: float, alpha: float, *, paired: bool, cap: int = 10_000) -> int | None:
    """Smallest n per arm with 80% power at the observed effect; None when beyond ``cap``."""
    import numpy as np

    if not effect > 0 or not spread > 0:
        return None
    # power grows with n: scan 2..64 one by one and beyond on a coarse grid, then refine
    ns = np.unique(np.r_[np.arange(2, 65), np.geomspace(64, cap, 32).astype(int)])
    ok = np.nonzero(power(effect, spread, ns, alpha, paired=paired) >= POWER)[0]
    if not len(ok):
        return None
    k = ok[0]
    if k == 0 or ns[k] - ns[k - 1] == 1:
        return int(ns[k])
    fine = np.arange(ns[k - 1] + 1, ns[k] + 1)
    return int(fine[np.nonzero(power(effect, spread, fine, alpha, paired=paired) >= POWER)[0][0]])


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    out: list[float] = holm_array(p_values).tolist()
    return out


def holm_array(p_values: Any) -> np.ndarray:
    """:func:`holm` on an array, as an array: one sort, whatever the number of tests."""
    import numpy as np

    p = np.asarray(p_values, dtype=float)
    out = np.full(len(p), np.nan)
    idx = np.nonzero(np.isfinite(p))[0]
    m = len(idx)
    if m:
        order = idx[np.argsort(p[idx], kind="stable")]
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adj, 1.0)
    return out


def kendall_w(ranks: np.ndarray) -> float:
    """Kendall's coefficient of concordance of m rankings (rows) of k items (columns)."""
    m, k = ranks.shape
    if m < 2 or k < 2:
        return float("nan")
    totals = ranks.sum(axis=0)
    s = float(((totals - totals.mean()) ** 2).sum())
    return float(12 * s / (m**2 * (k**3 - k)))
