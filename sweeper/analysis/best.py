"""The best trial and the trials no test can tell from it, in one vectorised pass over every trial.

Each trial is compared with the best by a paired t-test on the seeds both finished (Welch's test
when they share fewer than two), Holm-corrected over all the comparisons. One seeds x trials
matrix holds every value, so 200,000 trials cost a few array operations, not 200,000 scipy calls.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from sweeper.analysis.aggregate import complete_trials, completed, direction, stage_rows
from sweeper.analysis.inference import holm_array
from sweeper.results.values import best_of, raced, trial_means

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from sweeper.spec.experiment import Experiment


def seed_matrix(done: pd.DataFrame, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(trial ids, seeds x trials matrix of the mean value; NaN where a trial lacks that seed)."""
    import numpy as np

    trials, t_idx = np.unique(done["trial"].to_numpy(dtype=np.int64), return_inverse=True)
    _, s_idx = np.unique(done["seed"].to_numpy(dtype=np.int64), return_inverse=True)
    n_s, n_t = int(s_idx.max()) + 1, len(trials)
    flat = s_idx * n_t + t_idx
    values = done[metric].to_numpy(dtype=float)
    total = np.bincount(flat, weights=values, minlength=n_s * n_t)
    count = np.bincount(flat, minlength=n_s * n_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        wide = (total / count).reshape(n_s, n_t)
    return trials, wide


def best_vs_rest(
    df: pd.DataFrame, spec: Experiment, metric: str | None = None, alpha: float = 0.05
) -> tuple[int | None, list[int]]:
    """The best finished trial and the trials a (Holm-corrected, paired) t-test cannot tell from it."""
    import numpy as np
    from scipy.special import stdtr  # scipy.stats.t.sf(x, df) is stdtr(df, -x)

    metric = metric or spec.primary.name
    done = completed(raced(complete_trials(stage_rows(df), spec)[0], spec))
    best = best_of(trial_means(done, metric), direction(spec, metric))  # as sweeper status names it
    done = done[np.isfinite(done[metric].to_numpy(dtype=float))]
    if done.empty or best is None:
        return None, []
    trials, wide = seed_matrix(done, metric)
    n = np.isfinite(wide).sum(axis=0)
    means = np.nansum(wide, axis=0) / n
    b = int(np.searchsorted(trials, best))
    others = np.delete(np.arange(len(trials)), b)
    d = wide[:, others] - wide[:, [b]]
    pairs = np.isfinite(d).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # one replicate: no variance, NaN p (no test)
        mean_d = np.nansum(d, axis=0) / pairs
        sd_d = np.sqrt(np.nansum((d - mean_d) ** 2, axis=0) / (pairs - 1))
        t = mean_d / (sd_d / np.sqrt(pairs))
        p = 2 * stdtr(pairs - 1, -np.abs(t))
        # fewer than two shared seeds: Welch's test on what each has
        x = wide[:, others]
        nx = n[others].astype(float)
        vx = np.nanvar(x, axis=0, ddof=1) / nx
        vb = float(np.nanvar(wide[:, b], ddof=1)) / n[b]
        tw = (means[others] - means[b]) / np.sqrt(vx + vb)
        dfw = (vx + vb) ** 2 / (vx**2 / (nx - 1) + vb**2 / (n[b] - 1))
        pw = 2 * stdtr(dfw, -np.abs(tw))
    p = np.where(pairs >= 2, p, pw)
    same_spread = (pairs >= 2) & (sd_d == 0)  # every seed gives the same difference
    p = np.where(same_spread, np.where(mean_d == 0, 1.0, 0.0), p)
    adjusted = holm_array(p)
    keep = np.isfinite(adjusted) & (adjusted >= alpha)
    return int(trials[b]), trials[others][keep].tolist()
