"""Practical significance: a region of practical equivalence (ROPE) and the Bayesian correlated t-test.

Benavoli, Corani, Demšar and Zaffalon (2017, JMLR 18): with n paired differences of mean d and sd s,
whose replicates are correlated by rho (cross-validation folds share training data; rho = test size /
total size, Nadeau and Bengio's correction), the posterior of the mean difference is Student t with
n - 1 degrees of freedom, location d and scale s * sqrt(1/n + rho / (1 - rho)). Independent seeds
have rho = 0, where this is the paired t-test read as a posterior. The report gives the posterior mass
below -rope, inside [-rope, rope] and above rope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rope:
    rope: float
    correlation: float
    below: float  # P(effect < -rope)
    inside: float  # P(-rope <= effect <= rope)
    above: float  # P(effect > rope)


def correlated_t(d: Any, rope: float, correlation: float = 0.0) -> Rope:
    """Posterior probabilities of the mean of the differences ``d`` below, inside and above the ROPE."""
    import numpy as np
    from scipy import stats

    d = np.asarray(d, dtype=float)
    n = len(d)
    nan = float("nan")
    if n < 2:
        return Rope(rope, correlation, nan, nan, nan)
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if sd == 0:  # a point mass at the mean
        below, above = float(mean < -rope), float(mean > rope)
        return Rope(rope, correlation, below, 1 - below - above, above)
    scale = sd * math.sqrt(1 / n + correlation / (1 - correlation))
    post = stats.t(n - 1, loc=mean, scale=scale)
    below, above = float(post.cdf(-rope)), float(post.sf(rope))
    return Rope(rope, correlation, below, max(0.0, 1 - below - above), above)


def correlated_interval(d: Any, level: float, correlation: float) -> tuple[float, float]:
    """The central posterior interval of the mean difference (the t CI, widened for correlation)."""
    import numpy as np
    from scipy import stats

    d = np.asarray(d, dtype=float)
    n = len(d)
    if n < 2:
        return float("nan"), float("nan")
    scale = float(d.std(ddof=1)) * math.sqrt(1 / n + correlation / (1 - correlation))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * scale
    return float(d.mean()) - half, float(d.mean()) + half


def outcome(ci_low: float, ci_high: float, direction: str, rope: float | None, supported: bool) -> str:
    """supported / not supported, and with a ROPE also equivalent (the CI lies inside +-rope) or
    inconclusive (the CI reaches both inside and outside the ROPE without excluding zero)."""
    if rope is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "supported" if supported else "not supported"
    if -rope <= ci_low and ci_high <= rope:
        return "equivalent"
    if supported:
        return "supported"
    worse = ci_high < 0 if direction == "maximize" else ci_low > 0
    return "not supported" if worse else "inconclusive"
