"""What a trial's replicates add up to: its value and the best trial, defined once for every view.

A trial's value is the mean of its primary metric over its ``complete`` replicates whose value is finite,
exactly what is told to Optuna; the best trial is the one whose value is best in the metric's direction.
Only *finished* trials (every replicate has a row) are ranked: mid-sweep, a trial with one replicate in
would stand as "best so far (mean of 1)" beside trials averaged over five, which misleads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.model import Experiment

SEARCH, CONFIRM = "search", "confirm"  # the stage column's values (a table without it is all search)
# Confirmation trials get ids from here on, so a search extended later (more trials) never collides.
CONFIRM_BASE = 1_000_000_000


def expected_replicates(spec: Experiment, stage: str = SEARCH) -> int:
    """Rows a trial of ``stage`` has once finished (racing: its minimum, after which it may stop)."""
    confirm = spec.compare.confirm if spec.compare is not None else None
    if stage == CONFIRM and confirm is not None:
        return confirm.replicates
    return spec.racing.min if spec.racing is not None else spec.replicates


def stages(table: pd.DataFrame) -> pd.Series:
    """Each row's stage: the ``stage`` column, or ``search`` for tables written before it existed."""
    import pandas as pd

    if "stage" in table.columns:
        return table["stage"].fillna(SEARCH).astype(str)
    return pd.Series(SEARCH, index=table.index)


def complete_trials(table: pd.DataFrame, spec: Experiment) -> tuple[pd.DataFrame, int]:
    """The rows of trials whose replicates have all finished (any status), and how many trials are partial.

    The one definition every view uses (status, table, report): rank and compare only these. A trial
    has finished when it has as many rows as its stage expects, or as the fullest trial of its stage
    has (a table written with fewer replicates than the spec now asks for is still comparable).
    """
    if table.empty or "trial" not in table.columns:
        return table, 0
    import numpy as np

    want = np.where(
        stages(table).to_numpy() == CONFIRM,
        expected_replicates(spec, CONFIRM),
        expected_replicates(spec, SEARCH),
    )
    trial = table["trial"].to_numpy()
    ids, inverse, counts = np.unique(trial, return_inverse=True, return_counts=True)
    need = np.zeros(len(ids), dtype=np.int64)
    np.maximum.at(need, inverse, want)
    for expected in np.unique(need):  # cap each stage's need at its fullest trial
        of_stage = need == expected
        need[of_stage] = min(int(expected), int(counts[of_stage].max()))
    done = counts >= need
    if done.all():
        return table, 0
    return table[done[inverse]], int((~done).sum())


def best_trial(table: pd.DataFrame, spec: Experiment) -> dict[str, Any] | None:
    """The best finished search-stage trial: its id, variables, value and replicate count."""
    metric = spec.primary
    if not len(table):
        return None
    finished, _ = complete_trials(table, spec)
    done = finished[(finished["status"] == "complete") & (stages(finished) == SEARCH)]
    if done.empty:
        return None
    agg = done.groupby("trial")[metric.name].agg(["mean", "count"])
    agg = agg[agg["mean"].notna() & (agg["mean"].abs() != float("inf"))]  # as told to Optuna
    if agg.empty:
        return None
    best = agg["mean"].idxmax() if metric.direction == "maximize" else agg["mean"].idxmin()
    row = done[done["trial"] == best].iloc[0]
    params = {v.name: _plain(row[v.name]) for v in spec.variables if _present(row[v.name])}
    return {
        "trial": int(best),
        "params": params,
        "metric": metric.name,
        "mean": float(agg.loc[best, "mean"]),
        "n": int(agg.loc[best, "count"]),
    }


def _present(value: Any) -> bool:
    import pandas as pd

    return not (value is None or (not isinstance(value, str) and pd.isna(value)))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
