"""The confirmation stage (``compare: {confirm: 10}``): the winner's curse fixed, not only named.

After the search, each arm's chosen configuration (its best trial, or its ``top`` best, in each
setting of ``within:``) is rerun on fresh seeds (:func:`sweeper.search.seeds.confirm_seeds`,
another spawn key of the experiment seed) as ordinary trials with ids from ``CONFIRM_BASE`` on and
``stage: confirm`` in the table. The selection is made once: on a resume the confirmation trials
already in the table are completed, never chosen again. They are never pruned, and never told to
Optuna (the search is over).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.results.values import CONFIRM, CONFIRM_BASE, SEARCH, complete_trials, stages
from sweeper.search.searcher import Proposal

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.engine.loop import Engine
    from sweeper.spec.experiment import Experiment


class Fixed:
    """A searcher over a fixed list of proposals (the engine's ``Searcher`` seam: ask, tell, restore)."""

    adaptive = False

    def __init__(self, proposals: list[Proposal]):
        self._left = list(proposals)
        self.total = len(proposals)
        self.asked = 0
        self.max_pending: int | None = None

    def ask(self) -> Proposal | None:
        if not self._left:
            return None
        self.asked += 1
        return self._left.pop(0)

    def tell(self, trial: int, values: Any, status: str) -> None:
        """Nothing learns from confirmation runs; the table keeps them."""

    def report(self, trial: int, curve: dict[int, float]) -> None:
        """Confirmation curves go to history/ only."""

    def restore(self, finished: list[tuple[Any, ...]], partial: list[tuple[Any, ...]]) -> None:
        """Trials the table already holds are not handed out again (their missing replicates are
        queued by the engine from ``Restored``)."""
        used = {k for k, *_ in finished} | {k for k, *_ in partial}
        self._left = [p for p in self._left if p.trial not in used]
        self.asked = self.total - len(self._left)


def choose(spec: Experiment, table: pd.DataFrame) -> list[Proposal]:
    """The configurations to confirm: each arm's ``top`` best finished search trials per setting."""
    compare = spec.compare
    if compare is None or compare.confirm is None or table.empty:
        return []
    finished, _ = complete_trials(table[stages(table) == SEARCH], spec)
    done = finished[(finished["status"] == "complete") & finished[compare.metric].notna()]
    done = done[done[compare.metric].abs() != math.inf]
    if done.empty:
        return []
    names = [v.name for v in spec.variables]
    means = done.groupby("trial").agg(value=(compare.metric, "mean"), **{n: (n, "first") for n in names})
    levels = _levels(compare, means)
    means = means[means[compare.variable].astype(str).isin([str(x) for x in levels])]
    lower = next(m.direction for m in spec.metrics if m.name == compare.metric) == "minimize"
    means = means.sort_values("value", ascending=lower, kind="stable")
    keys = [*compare.within, compare.variable]
    picked = means.groupby(keys, sort=True, dropna=False).head(compare.confirm.top)
    picked = picked.sort_values([*keys, "value"], kind="stable")
    out = []
    for i, (_, row) in enumerate(picked.iterrows()):
        params = {v.name: _typed(v, row[v.name]) for v in spec.variables if _present(row[v.name])}
        out.append(Proposal(CONFIRM_BASE + i, params))
    return out


def _levels(compare: Any, means: pd.DataFrame) -> list[Any]:
    if compare.treatment is None:
        return list(means[compare.variable].dropna().unique())
    named = list(compare.treatment) if isinstance(compare.treatment, tuple) else [compare.treatment]
    return [compare.baseline, *named]


def recorded(spec: Experiment, table: pd.DataFrame) -> list[Proposal]:
    """The confirmation trials a table already holds (ids and variables), to complete on a resume."""
    rows = table[stages(table) == CONFIRM]
    firsts = rows.groupby("trial", sort=True).first()
    return [
        Proposal(
            int(k),
            {
                v.name: _typed(v, firsts.at[k, v.name])
                for v in spec.variables
                if _present(firsts.at[k, v.name])
            },
        )
        for k in firsts.index
    ]


def _present(value: Any) -> bool:
    import pandas as pd

    return not (value is None or (not isinstance(value, str) and pd.isna(value)))


def _typed(v: Any, raw: Any) -> Any:
    """A table cell back as the variable's value (mixed-type choices are stored as text)."""
    if v.kind in ("choice", "const"):
        options = v.choices if v.kind == "choice" else (v.value,)
        return {str(c): c for c in options}.get(str(raw), raw)
    raw = raw.item() if hasattr(raw, "item") else raw
    return int(raw) if v.kind == "int" else float(raw)


def pending(spec: Experiment, folder: Path) -> bool:
    """Whether the confirmation stage still has runs to make (so a relaunch needs its backend)."""
    from sweeper.results.table import TRIALS, load

    compare = spec.compare
    if compare is None or compare.confirm is None or not (folder / TRIALS).is_dir():
        return False
    table = load(folder)
    rows = table[stages(table) == CONFIRM]
    if rows.empty:
        return bool(choose(spec, table))
    return bool((rows.groupby("trial").size() < compare.confirm.replicates).any())


def confirmation(
    spec: Experiment, folder: Path, searched: Engine, *, retry_failed: bool = False
) -> Engine | None:
    """The engine of the confirmation stage, after ``searched`` ran the search; None when the sweep
    asks for none or has nothing to confirm. Its stats carry on from the search's."""
    from sweeper.engine.loop import Engine
    from sweeper.engine.resume import restore
    from sweeper.results.table import TRIALS, load
    from sweeper.search.seeds import confirm_seeds

    compare = spec.compare
    if compare is None or compare.confirm is None or not (folder / TRIALS).is_dir():
        return None
    table = load(folder)
    proposals = recorded(spec, table) or choose(spec, table)
    if not proposals:
        return None
    stage_spec = replace(spec, replicates=compare.confirm.replicates, racing=None, factors=())
    fixed = Fixed(proposals)
    restored = restore(stage_spec, folder, fixed, retry_failed=retry_failed, stage=CONFIRM)  # type: ignore[arg-type]
    engine = Engine(
        stage_spec,
        fixed,  # type: ignore[arg-type]
        searched.backend,
        searched.writer,
        searched.on_progress,
        restored,
        searched.tracker,
        seeds=confirm_seeds(spec.search.seed, compare.confirm.replicates),
        stage=CONFIRM,
    )
    before, now = searched.stats, engine.stats
    now.started = before.started  # one launch: its rate counts both stages' new runs over its whole time
    now.runs_done += before.runs_done
    now.runs_before += before.runs_before
    now.trials_done += before.trials_done
    now.trials_total += before.trials_total
    for status, n in before.counts.items():
        now.counts[status] = now.counts.get(status, 0) + n
    now.best_value, now.best_trial = before.best_value, before.best_trial
    for name in ("first_start", "first_new"):
        times = [t for t in (getattr(before, name), getattr(now, name)) if t is not None]
        setattr(now, name, min(times) if times else None)
    return engine
