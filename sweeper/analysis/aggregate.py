"""Replicates to trials: which rows count, and the per-trial (or per-group) mean, sd and CI, ranked.

Only finished trials are ranked (:func:`sweeper.results.values.complete_trials`, the one definition
status, table and report share); confirmation-stage trials are kept apart from the search's
(:func:`stage_rows`), since the verdict rests on them and the ranking must not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sweeper.analysis.inference import LEVEL, t_interval
from sweeper.errors import SweeperError
from sweeper.results.values import CONFIRM, SEARCH, complete_trials, stages

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

__all__ = [
    "CONFIRM",
    "SEARCH",
    "aggregate",
    "complete_trials",
    "completed",
    "direction",
    "stage_rows",
    "summary",
    "swept",
]


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished replicates: only these carry metrics worth averaging."""
    if "status" not in df.columns:
        return df
    ok = df["status"] == "complete"
    return df if ok.all() else df[ok]


def stage_rows(df: pd.DataFrame, stage: str = SEARCH) -> pd.DataFrame:
    """The rows of one stage (``search`` or ``confirm``)."""
    if "stage" not in df.columns:
        return df if stage == SEARCH else df.iloc[:0]
    mask = stages(df) == stage
    return df if mask.all() else df[mask]


def swept(spec: Experiment, df: pd.DataFrame | None = None) -> list[str]:
    """Variables that vary (constants would only repeat one value in every row)."""
    names = [v.name for v in spec.variables if v.kind != "const"]
    return [n for n in names if df is None or n in df.columns]


def direction(spec: Experiment, metric: str) -> str:
    for m in spec.metrics:
        if m.name == metric:
            return m.direction
    raise SweeperError(f"{metric!r} is not a metric of {spec.name}")


def aggregate(
    df: pd.DataFrame,
    spec: Experiment,
    by: Sequence[str] | None = None,
    level: float = LEVEL,
    stage: str = SEARCH,
) -> pd.DataFrame:
    """One row per finished trial (or per ``by`` group): n, and mean/std/CI of each metric, ranked.

    Grouped rows pool every finished replicate of the group's trials (a mean over the other
    variables weighted by replicates); ``n_trials`` says how many trials fed each group. Their CIs
    treat the pooled replicates as independent, which they are not quite (shared seeds, shared
    trials): read them as a guide; the hypothesis test is ``hypothesis_verdict``. Trials still
    missing replicates are left out (``df.attrs["partial"]`` says how many).
    """
    import numpy as np
    import pandas as pd

    metrics = [m.name for m in spec.metrics if m.name in df.columns]
    variables = swept(spec, df)
    if by:
        unknown = [b for b in by if b not in [v.name for v in spec.variables]]
        if unknown:
            raise SweeperError(
                f"--by {','.join(unknown)}: not a variable of {spec.name}; "
                f"use one of {', '.join(v.name for v in spec.variables)}"
            )
    df, partial = complete_trials(stage_rows(df, stage), spec)
    done = completed(df)
    if by:
        keys = list(by)
        groups = done.groupby(keys, dropna=False, sort=True)
        out = groups.size().rename("n").to_frame()
        out.insert(0, "n_trials", groups["trial"].nunique())
    else:
        keys = ["trial"]
        trials = (
            df.groupby("trial", sort=True)[variables].first()
            if variables
            else (pd.DataFrame(index=pd.Index(sorted(df["trial"].unique()), name="trial")))
        )
        groups = done.groupby("trial", sort=True)
        out = trials.join(groups.size().rename("n"), how="left")
        out["n"] = out["n"].fillna(0).astype("int64")
    if "status" in df.columns and (df["status"] != "complete").any():
        # say where replicates went missing (stopped early by the pruner, failed, timed out)
        flags = pd.DataFrame(
            {"n_pruned": df["status"].eq("pruned"), "n_failed": df["status"].isin(["failed", "timeout"])}
        )
        for k in keys:
            flags[k] = df[k]
        counts = flags.groupby(keys, dropna=False, sort=True)[["n_pruned", "n_failed"]].sum()
        at = out.columns.get_loc("n") + 1
        for i, col in enumerate(("n_pruned", "n_failed")):
            out.insert(at + i, col, counts[col].reindex(out.index).fillna(0).astype("int64"))
    for m in metrics:
        agg_ = groups[m].agg(["mean", "std", "count"])
        out[f"{m}_mean"] = agg_["mean"]
        out[f"{m}_std"] = agg_["std"]
        lo, hi = t_interval(agg_["mean"], agg_["std"], agg_["count"], level)
        out[f"{m}_ci_low"] = pd.Series(lo, index=agg_.index)
        out[f"{m}_ci_high"] = pd.Series(hi, index=agg_.index)
    out = out.reset_index()
    if metrics:
        primary = spec.primary.name if spec.primary.name in metrics else metrics[0]
        ascending = direction(spec, primary) == "minimize"
        out = out.sort_values(f"{primary}_mean", ascending=ascending, na_position="last", kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out = out.reset_index(drop=True)
    out.attrs["partial"] = partial
    return out


def summary(
    path: str | os.PathLike[str], by: Sequence[str] | str | None = None, level: float = LEVEL
) -> pd.DataFrame:
    """The summary table of a results folder: one row per finished trial (or ``by`` group), ranked.

    Columns: rank, the variables (or ``by``), n, and ``<metric>_mean/_std/_ci_low/_ci_high``.
    """
    from sweeper.results.table import load, read_spec

    path = os.fspath(path)  # a launch's result stands for its folder
    spec = read_spec(path)
    if isinstance(by, str):
        by = [b.strip() for b in by.split(",") if b.strip()]
    return aggregate(load(path), spec, by=by or None, level=level)
