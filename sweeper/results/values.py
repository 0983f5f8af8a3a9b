"""What a trial's replicates add up to: its value and the best trial, defined once for every view.

A trial's value is the mean of its primary metric over its ``complete`` replicates whose value is finite,
exactly what is told to Optuna; the best trial is the one whose value is best in the metric's direction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.model import Experiment


def best_trial(table: pd.DataFrame, spec: Experiment) -> dict[str, Any] | None:
    metric = spec.primary
    done = table[table["status"] == "complete"] if len(table) else table
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
