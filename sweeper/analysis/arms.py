"""Which rows stand for each arm of a comparison: a level's best trial (or all its trials, pooled), per
setting of the blocking variables, and its value per seed. Each level's rows come from one groupby."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.analysis.aggregate import completed
from sweeper.results.values import best_of, trial_means

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Compare


def _level_mask(df: pd.DataFrame, variable: str, level: Any) -> pd.Series:
    column = df[variable]
    mask = (column == level).fillna(False).astype(bool)  # NA: the variable is inactive there
    if not mask.any():  # a YAML 1 against a string column, or the other way round
        mask = column.notna() & (column.astype(str) == str(level))
    return mask


def by_level(done: pd.DataFrame, variable: str) -> dict[Any, pd.DataFrame]:
    """The rows of each level of ``variable``, from one groupby: filtering the whole table once per
    level would cost levels x rows."""
    return dict(iter(done.groupby(variable, sort=False, dropna=True)))


def level_rows(groups: dict[Any, pd.DataFrame], level: Any, empty: pd.DataFrame) -> pd.DataFrame:
    """``_level_mask``'s rows from the groups: the level itself, else the levels that print like it."""
    import pandas as pd

    exact = [g for k, g in groups.items() if _equal(k, level)]
    if not exact:  # a YAML 1 against a string column, or the other way round
        exact = [g for k, g in groups.items() if str(k) == str(level)]
    if not exact:
        return empty
    return exact[0] if len(exact) == 1 else pd.concat(exact).sort_index()


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # e.g. a list level against a scalar: an array, not a bool
        return False


def arm_rows(
    df: pd.DataFrame,
    variable: str,
    level: Any,
    metric: str,
    direction: str,
    arms: str = "best",
    groups: dict[Any, pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, int | None, int]:
    """The finished rows standing for one arm: (rows, trial used or None when pooled, trials in arm).

    ``groups`` (``by_level`` of the finished rows) saves a pass over the table per arm."""
    if groups is None:
        done = completed(df)
        arm = done[_level_mask(done, variable, level)]
    else:
        arm = level_rows(groups, level, df.iloc[:0])
    rows = arm[arm[metric].notna()]
    if rows.empty:
        return rows, None, 0
    n_trials = int(rows["trial"].nunique())
    if arms == "pooled":
        return rows, None, n_trials
    best = best_of(trial_means(arm, metric), direction)  # the arm's best trial, as status names it
    if best is None:
        return rows.iloc[:0], None, n_trials
    return rows[rows["trial"] == best], best, n_trials


def per_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """An arm's value per seed (the mean over its trials when pooled)."""
    if rows["trial"].nunique() <= 1 and rows["seed"].is_unique:  # one trial: nothing to average
        return rows.set_index("seed")[metric].sort_index()
    return rows.groupby("seed", sort=True)[metric].mean()


def arm_values(
    df: pd.DataFrame, variable: str, level: Any, metric: str, direction: str, arms: str = "best"
) -> tuple[pd.Series, int | None, int]:
    """Per-seed values of one arm: (values indexed by seed, trial used or None, trials in arm)."""
    rows, trial, n = arm_rows(df, variable, level, metric, direction, arms)
    return per_seed(rows, metric), trial, n


def settings(df: pd.DataFrame, within: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """(label, rows) per combination of the blocking variables; one unlabelled setting without any."""
    if not within:
        return [("", df)]
    out = []
    for key, rows in df.groupby(list(within), sort=True, dropna=False):
        values = key if isinstance(key, tuple) else (key,)
        out.append((", ".join(f"{w}={v}" for w, v in zip(within, values, strict=True)), rows))
    return out


@dataclass(slots=True)
class Arm:
    rows: pd.DataFrame
    values: pd.Series
    trial: int | None


def arms_in(
    df: pd.DataFrame, compare: Compare, direction: str, levels: Sequence[Any], arms: str
) -> dict[Any, Arm]:
    out = {}
    done = completed(df)
    groups = by_level(done, compare.variable)
    for level in [compare.baseline, *levels]:
        rows, trial, _ = arm_rows(done, compare.variable, level, compare.metric, direction, arms, groups)
        out[level] = Arm(rows, per_seed(rows, compare.metric), trial)
    return out
