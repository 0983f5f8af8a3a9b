"""The verdict across settings (datasets, tasks): rank tests over the settings, rliable's aggregates.

- Two arms: the Wilcoxon signed-rank test over the settings' effects and the sign test's count
  ("better on 7 of 8 datasets"), as Demšar (2006, JMLR 7) recommends for two classifiers.
- Three or more: the Friedman test over the arms' ranks in each setting, the Nemenyi critical
  difference and Holm-corrected comparisons with the baseline (Demšar 2006, section 3.2.2).
- Aggregates (Agarwal et al. 2021, rliable): the interquartile mean of every run's score with a
  stratified-bootstrap 95 % CI (runs resampled within each setting), and the probability of
  improvement P(treatment > baseline), averaged over settings, with its CI.
- Scores are normalised per setting, since settings' metrics need not share a scale: 0 is the worst
  and 1 the best run of any compared arm in that setting (flipped for metrics to minimise). Effects
  for the signed-rank test are divided by the same per-setting range.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

RESAMPLES = 2000
NORMALISATION = (
    "scores are normalised per setting: 0 is the worst and 1 the best run of any compared arm in that "
    "setting (flipped when lower is better), so settings with different scales weigh the same"
)

# {setting: {arm: per-seed values (indexed by seed)}}
ArmValues = Mapping[str, Mapping[Any, "pd.Series"]]


@dataclass(frozen=True, slots=True)
class Aggregate:
    arm: Any
    iqm: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True, slots=True)
class PostHoc:
    arm: Any
    rank: float  # average rank over settings (1 = best)
    z: float
    p_value: float
    p_holm: float


@dataclass(frozen=True, slots=True)
class Across:
    """The overall verdict over the settings, for the treatment the headline names."""

    settings: tuple[str, ...]
    arms: tuple[Any, ...]  # baseline first
    treatment: Any
    baseline: Any
    test: str
    statistic: float
    p_value: float
    supported: bool
    better: int  # settings where the treatment's mean is better than the baseline's
    n_settings: int
    sign_p: float
    median_effect: float  # normalised, treatment minus baseline (positive: better)
    iqm: tuple[Aggregate, ...]
    poi: float  # P(treatment > baseline)
    poi_low: float
    poi_high: float
    ranks: tuple[tuple[Any, float], ...] = ()  # Friedman: average rank per arm
    cd: float = float("nan")  # Nemenyi critical difference of average ranks
    posthoc: tuple[PostHoc, ...] = ()
    sentence: str = ""
    notes: tuple[str, ...] = ()


def normalised(values: ArmValues, direction: str) -> dict[str, dict[Any, np.ndarray]]:
    """Each run's score in [0, 1] within its setting (1: the best run of any arm there)."""
    import numpy as np

    out: dict[str, dict[Any, np.ndarray]] = {}
    for setting, arms in values.items():
        pooled = np.concatenate([np.asarray(v, dtype=float) for v in arms.values()])
        lo, hi = float(np.nanmin(pooled)), float(np.nanmax(pooled))
        span = hi - lo
        out[setting] = {}
        for arm, v in arms.items():
            x = np.asarray(v, dtype=float)
            s = np.full(len(x), 0.5) if span == 0 else (x - lo) / span
            out[setting][arm] = s if direction == "maximize" else 1 - s
    return out


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle half (floor(n/4) cut from each end, as scipy's
    ``trim_mean(x, 0.25)``)."""
    import numpy as np

    x = np.sort(np.asarray(x, dtype=float), axis=axis)
    n = x.shape[axis]
    k = int(0.25 * n)
    return np.asarray(np.take(x, np.arange(k, n - k), axis=axis).mean(axis=axis))


def _resample(rng: np.random.Generator, n: int, reps: int) -> np.ndarray:
    return rng.integers(0, n, size=(reps, n))


def iqm_ci(
    scores: Sequence[np.ndarray], level: float = 0.95, seed: int = 0, reps: int = RESAMPLES
) -> tuple[float, float, float]:
    """IQM of all runs of all settings, and its stratified-bootstrap percentile CI."""
    import numpy as np

    rng = np.random.default_rng(seed)
    point = float(iqm(np.concatenate(scores)))
    boot = np.concatenate([s[_resample(rng, len(s), reps)] for s in scores if len(s)], axis=1)
    lo, hi = np.quantile(iqm(boot, axis=1), [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)


def _poi(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over the last two axes' pairs (x: (..., n), y: (..., m))."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
    out: np.ndarray = gt + eq / 2
    return out


def poi_ci(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], level: float = 0.95, seed: int = 0, reps: int = RESAMPLES
) -> tuple[float, float, float]:
    """Probability of improvement averaged over settings, with its stratified-bootstrap CI."""
    import numpy as np

    rng = np.random.default_rng(seed)
    point = float(np.mean([_poi(x, y) for x, y in pairs]))
    boot = np.zeros(reps)
    for x, y in pairs:
        boot += _poi(x[_resample(rng, len(x), reps)], y[_resample(rng, len(y), reps)])
    boot /= len(pairs)
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Nemenyi's critical difference of average ranks for k arms over n settings (Demšar 2006, eq. 5)."""
    import numpy as np
    from scipy import stats

    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q * math.sqrt(k * (k + 1) / (6 * n))


def average_ranks(table: np.ndarray) -> np.ndarray:
    """Average rank of each column (arm) over rows (settings); 1 is the highest value, ties averaged."""
    from scipy import stats

    return stats.rankdata(-table, axis=1).mean(axis=0)  # type: ignore[no-any-return]


def across(
    values: ArmValues,
    *,
    treatment: Any,
    baseline: Any,
    arms: Sequence[Any],
    direction: str,
    alpha: float,
    seed: int = 0,
    reps: int = RESAMPLES,
) -> Across | None:
    """The overall verdict from each setting's per-seed arm values; None with fewer than 2 settings."""
    import numpy as np
    from scipy import stats

    from sweeper.analysis.inference import holm

    settings = [s for s, a in values.items() if all(len(a.get(x, ())) for x in arms)]
    if len(settings) < 2:
        return None
    sign = 1.0 if direction == "maximize" else -1.0
    kept = {s: values[s] for s in settings}
    scores = normalised(kept, direction)
    means = np.array([[float(np.mean(kept[s][a])) for a in arms] for s in settings])
    spans = np.array([float(np.ptp(np.concatenate([kept[s][a] for a in arms]))) for s in settings])
    b_i = list(arms).index(baseline)
    effects = np.array([_paired_effect(kept[s][treatment], kept[s][baseline]) for s in settings])
    with np.errstate(invalid="ignore", divide="ignore"):
        norm_effects = np.where(spans > 0, sign * effects / spans, 0.0)
    better = int((norm_effects > 0).sum())
    worse = int((norm_effects < 0).sum())
    sign_p = float(stats.binomtest(better, better + worse, 0.5).pvalue) if better + worse else 1.0
    aggregates = tuple(
        Aggregate(a, *iqm_ci([scores[s][a] for s in settings], 1 - alpha, seed, reps)) for a in arms
    )
    poi, poi_lo, poi_hi = poi_ci(
        [(scores[s][treatment], scores[s][baseline]) for s in settings], 1 - alpha, seed, reps
    )
    n = len(settings)
    notes: list[str] = []
    if len(arms) == 2:
        test = "Wilcoxon signed-rank"
        nonzero = norm_effects[norm_effects != 0]
        if len(nonzero):
            res = stats.wilcoxon(norm_effects)
            stat, p = float(res.statistic), float(res.pvalue)
        else:
            stat, p = 0.0, 1.0
        smallest = 2 / 2**n
        if smallest >= alpha:
            notes.append(
                f"with {n} settings the signed-rank test cannot reach {alpha:g} even when the treatment "
                f"wins everywhere (smallest p = {smallest:.3g}); it needs {_settings_needed(alpha)}"
            )
        median = float(np.median(norm_effects))
        supported = bool(p < alpha and median > 0)
        return Across(
            tuple(settings),
            tuple(arms),
            treatment,
            baseline,
            test,
            stat,
            p,
            supported,
            better,
            n,
            sign_p,
            median,
            aggregates,
            poi,
            poi_lo,
            poi_hi,
            notes=tuple(notes),
        )
    ranks = average_ranks(sign * means)
    res = stats.friedmanchisquare(*(sign * means).T)
    stat, p = float(res.statistic), float(res.pvalue)
    k = len(arms)
    se = math.sqrt(k * (k + 1) / (6 * n))
    z = [(ranks[b_i] - ranks[i]) / se for i in range(k) if i != b_i]  # positive: ranks better
    ps = [float(2 * stats.norm.sf(abs(x))) for x in z]
    adj = holm(ps)
    others = [a for i, a in enumerate(arms) if i != b_i]
    posthoc = tuple(
        PostHoc(a, float(ranks[list(arms).index(a)]), float(zz), pp, pa)
        for a, zz, pp, pa in zip(others, z, ps, adj, strict=True)
    )
    main = next(ph for ph in posthoc if ph.arm == treatment)
    supported = bool(p < alpha and main.p_holm < alpha and main.z > 0)
    return Across(
        tuple(settings),
        tuple(arms),
        treatment,
        baseline,
        "Friedman",
        stat,
        p,
        supported,
        better,
        n,
        sign_p,
        float(np.median(norm_effects)),
        aggregates,
        poi,
        poi_lo,
        poi_hi,
        ranks=tuple((a, float(r)) for a, r in zip(arms, ranks, strict=True)),
        cd=critical_difference(k, n, alpha),
        posthoc=posthoc,
        notes=tuple(notes),
    )


def _paired_effect(a: pd.Series, b: pd.Series) -> float:
    """Mean treatment-minus-baseline difference over shared seeds (over all runs without any)."""
    shared = a.index.intersection(b.index)
    if len(shared):
        return float((a.loc[shared] - b.loc[shared]).mean())
    return float(a.mean() - b.mean())


def _settings_needed(alpha: float) -> int:
    n = 1
    while 2 / 2**n >= alpha:
        n += 1
    return n
