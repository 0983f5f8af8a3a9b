"""How much the ranking depends on the seed: the seeds' "if I perturb it, does it hold?" check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sweeper.analysis.aggregate import complete_trials, completed, stage_rows
from sweeper.analysis.inference import kendall_w

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

COLUMNS = ["rank", "trial", "n", "mean", "std", "cv", "seed_rank_min", "seed_rank_max", "best_on", "flips"]


@dataclass(frozen=True, slots=True)
class Stability:
    """Spread across seeds per trial and whether the top trials' order flips from seed to seed."""

    table: pd.DataFrame  # per trial: rank, mean, std, cv, seed_rank_min/max, best_on, flips
    kendall_w: float  # agreement of the per-seed rankings of the top trials (1 = identical)
    seeds: int
    top: int


def stability(df: pd.DataFrame, spec: Experiment, top: int = 10) -> Stability:
    """Spread across seeds per finished search trial, and the top trials' per-seed ranks."""
    import numpy as np
    import pandas as pd

    metric = spec.primary.name
    direction = spec.primary.direction
    done = completed(complete_trials(stage_rows(df), spec)[0])
    done = done[done[metric].notna()]
    if done.empty:
        return Stability(pd.DataFrame(columns=COLUMNS), float("nan"), 0, 0)
    g = done.groupby("trial")[metric]
    table = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std()})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["cv"] = table["std"] / table["mean"].abs()
    table = table.sort_values("mean", ascending=direction == "minimize", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    chosen = list(table.index[:top])
    top_rows = done[done["trial"].isin(chosen)]
    wide = top_rows.groupby(["seed", "trial"])[metric].mean().unstack("trial")
    sub = wide[chosen].dropna(axis=0, how="any")  # seeds every top trial finished
    table["seed_rank_min"] = np.nan
    table["seed_rank_max"] = np.nan
    table["best_on"] = np.nan
    table["flips"] = False
    w = float("nan")
    if len(sub) >= 2 and len(chosen) >= 2:
        ranks = sub.rank(axis=1, ascending=direction == "minimize", method="min")
        table.loc[chosen, "seed_rank_min"] = ranks.min().to_numpy()
        table.loc[chosen, "seed_rank_max"] = ranks.max().to_numpy()
        table.loc[chosen, "best_on"] = (ranks == 1).mean().to_numpy()
        table.loc[chosen, "flips"] = (ranks.min() != ranks.max()).to_numpy()
        w = kendall_w(sub.rank(axis=1).to_numpy())
    table = table.reset_index()[COLUMNS]
    return Stability(table, w, len(sub), len(chosen))
