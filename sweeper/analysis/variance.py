"""Which perturbation the result is sensitive to: the seed-to-seed variance split over seed factors.

With ``replicates: {data: 5, init: 2}`` every trial runs the full factorial of seeds, one run per
cell. Per trial, the primary metric is modelled as a crossed random-effects design with one
observation per cell, ``y = mu + a_data + b_init + e`` (interactions are not identifiable with one
run per cell, so they sit in the residual ``e``). The balanced ANOVA (method of moments) estimates
each variance: with N cells and n_f levels of factor f,

    MS_f = (N / n_f) * sum over levels (mean of level - grand mean)^2 / (n_f - 1)
    MS_e = (SS_total - sum_f SS_f) / (N - 1 - sum_f (n_f - 1))
    var_f = (MS_f - MS_e) / (N / n_f),   var_e = MS_e

These are the REML estimates of statsmodels' ``MixedLM`` for this design when none is clipped (a
test checks that). Pooled over trials, each component is the mean of the trials' unclipped
estimates (each is unbiased), clipped at zero only at the end; shares are of their sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

RESIDUAL = "residual"


@dataclass(frozen=True, slots=True)
class Decomposition:
    """Variance components of the primary metric: per trial (one row each) and pooled."""

    factors: tuple[str, ...]
    per_trial: pd.DataFrame  # trial, then var_<factor>..., var_residual, share_<factor>..., share_residual
    pooled: dict[str, float]  # factor or "residual" -> variance
    skipped: int  # trials without a complete factorial of finite values

    def shares(self) -> dict[str, float]:
        total = sum(self.pooled.values())
        return {k: (v / total if total > 0 else 0.0) for k, v in self.pooled.items()}

    @property
    def sentence(self) -> str:
        """ "73 % of the spread between replicates comes from data; init adds 9 %; ..." in words."""
        if not self.pooled or sum(self.pooled.values()) <= 0:
            return "The replicates do not differ: no seed factor moves the result."
        shares = self.shares()
        ranked = sorted(self.factors, key=lambda f: -shares[f])
        first, rest = ranked[0], ranked[1:]
        text = f"{_pct(shares[first])} of the spread between replicates comes from {first}"
        for f in rest:
            text += f"; {f} adds {_pct(shares[f])}"
        if RESIDUAL in shares:
            text += (
                f"; the remaining {_pct(shares[RESIDUAL])} belongs to no factor alone (their"
                " interaction and the run's own noise)"
            )
        n = len(self.per_trial)
        return text + f" (pooled over {n} trial{'s' if n != 1 else ''})."


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def components(values: Sequence[float], levels: Sequence[Sequence[int]], sizes: Sequence[int]) -> list[float]:
    """Unclipped variance components of one trial: one per factor, then the residual.

    ``values[c]`` is cell c's value, ``levels[c]`` its level of each factor (a full factorial of
    ``sizes``, each cell once). A factor with one level gets 0; without residual degrees of freedom
    (a single factor) the residual is 0 and the factor takes all the spread.
    """
    import numpy as np

    y = np.asarray(values, dtype=float)
    lv = np.asarray(levels, dtype=int).reshape(len(y), len(sizes))
    comps = _components(y, np.zeros(len(y), dtype=int), list(lv.T), sizes, 1)
    return [float(c[0]) for c in comps]


def _components(y: Any, at: Any, levels: list[Any], sizes: Sequence[int], trials: int) -> list[Any]:
    """:func:`components` of ``trials`` trials at once: row i is cell ``levels[f][i]`` of trial
    ``at[i]``, every trial a full factorial. Sums by ``np.bincount`` over (trial, level) keys."""
    import numpy as np

    n = len(y) // trials if trials else 0  # cells per trial
    grand = np.bincount(at, y, trials) / max(n, 1)
    ss_total = np.bincount(at, (y - grand[at]) ** 2, trials)
    ss, dfs = [], []
    for lv, size in zip(levels, sizes, strict=True):
        key = at * size + lv
        means = np.bincount(key, y, trials * size) / np.maximum(np.bincount(key, minlength=trials * size), 1)
        ss.append((n / size) * ((means.reshape(trials, size) - grand[:, None]) ** 2).sum(axis=1))
        dfs.append(size - 1)
    df_e = n - 1 - sum(dfs)
    none = np.zeros(trials)
    ms_e = np.maximum(ss_total - sum(ss, none), 0.0) / df_e if df_e > 0 else none
    out = [
        ((s / d) - ms_e) / (n / size) if d > 0 else none for s, d, size in zip(ss, dfs, sizes, strict=True)
    ]
    return [*out, ms_e]


def decompose(df: pd.DataFrame, spec: Experiment) -> Decomposition | None:
    """The decomposition of a factorial sweep's table; None when the sweep has no seed factors.

    Every trial at once, with ``np.bincount`` over (trial, level) keys: the same sums as
    :func:`components` per trial (a test holds them equal), without a Python pass per trial."""
    import math

    import numpy as np
    import pandas as pd

    from sweeper.search.seeds import seed_column

    if not spec.factors:
        return None
    names = tuple(f.name for f in spec.factors)
    sizes = [f.n for f in spec.factors]
    cells = math.prod(sizes)
    cols = [seed_column(n) for n in names]
    metric = spec.primary.name
    var_cols = [f"var_{n}" for n in names] + [f"var_{RESIDUAL}"]
    done = df[(df["status"] == "complete") & df[metric].notna()] if len(df) else df
    done = done.drop_duplicates(["trial", "replicate"]) if len(done) else done
    codes, trials = pd.factorize(done["trial"], sort=True) if len(done) else (np.zeros(0, int), [])
    y = done[metric].to_numpy(dtype=float) if len(done) else np.zeros(0)
    count = np.bincount(codes, minlength=len(trials))
    ok = (count == cells) & (np.bincount(codes, np.isfinite(y), len(trials)) == count)
    levels = []
    for c, size in zip(cols, sizes, strict=True):
        if c not in done.columns:  # a table written without this factor's seeds: no trial qualifies
            ok[:] = False
            levels.append(np.zeros(len(done), dtype=int))
            continue
        lv = done.groupby("trial", sort=False)[c].rank(method="dense").to_numpy(dtype=float) - 1
        top = np.full(len(trials), -1.0)
        np.maximum.at(top, codes, np.where(np.isnan(lv), np.inf, lv))
        ok &= top + 1 == size  # seed value -> level: exactly ``size`` distinct seeds in the trial
        levels.append(np.nan_to_num(lv).astype(int))
    skipped = int((~ok).sum())
    if not done.empty:
        skipped += int(df["trial"].nunique()) - len(trials)
    keep = ok[codes]
    kept = np.flatnonzero(ok)
    at = np.searchsorted(kept, codes[keep])  # row -> position among the trials kept
    comps = _components(y[keep], at, [lv[keep] for lv in levels], sizes, len(kept))
    per_trial = pd.DataFrame(
        {"trial": np.asarray(trials)[kept].astype(int), **dict(zip(var_cols, comps, strict=True))}
    )
    if per_trial.empty:
        return Decomposition(names, per_trial, {}, skipped)
    raw = per_trial[var_cols].mean()
    pooled = {k: max(float(raw[f"var_{k}"]), 0.0) for k in (*names, RESIDUAL)}
    if len(names) == 1 and pooled[RESIDUAL] == 0.0:
        del pooled[RESIDUAL]  # one factor: no residual degrees of freedom
    clipped = per_trial[var_cols].clip(lower=0.0)
    per_trial[var_cols] = clipped
    total = clipped.sum(axis=1)
    for c in var_cols:
        per_trial[c.replace("var_", "share_")] = (clipped[c] / total.where(total > 0)).fillna(0.0)
    return Decomposition(names, per_trial, pooled, skipped)
