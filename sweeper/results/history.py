"""The ``history/`` table: every intermediate report, one row per (run, step), streamed in parts.

Columns: ``trial``, ``replicate``, ``attempt``, ``step``, ``time`` (UTC), then one float64 column per
reported metric (declared metrics first, then other names in the order they first appear). A run
may report a step more than once and a retried run reports again under a new ``attempt``, so rows are
never de-duplicated. Parts written before a new metric name appeared simply lack its column; readers
see nulls there.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.errors import SweeperError
from sweeper.results import schema
from sweeper.results.reading import read_folder
from sweeper.results.table import TableWriter, arrow_fields

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

HISTORY = "history"
HISTORY_COLUMNS = frozenset(name for name, _ in schema.HISTORY_COLUMNS)
# (trial, replicate, attempt, step, unix time, {metric: value}) -- what a report becomes on the wire
Report = tuple[int, int, int, int, float, dict[str, float]]


def history_schema(metrics: Sequence[str]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([*arrow_fields(schema.HISTORY_COLUMNS), *(pa.field(m, pa.float64()) for m in metrics)])


class HistoryWriter:
    """Appends report rows to ``<folder>/history``; the schema grows as new metric names appear."""

    def __init__(self, folder: Path, metrics: Sequence[str]):
        self.folder = Path(folder) / HISTORY
        self._metrics = list(metrics)
        self._known = set(self._metrics)
        self._writer: TableWriter | None = None

    def _table(self) -> TableWriter:
        if self._writer is None:  # the folder appears with the first report, not before
            self._writer = TableWriter(self.folder, history_schema(self._metrics), keys=())
        return self._writer

    def append(self, reports: Iterable[Report]) -> None:
        rows = []
        new: list[str] = []
        for trial, replicate, attempt, step, t, metrics in reports:
            for name in metrics:
                if name not in self._known:
                    self._known.add(name)
                    new.append(name)
            rows.append(
                {
                    "trial": trial,
                    "replicate": replicate,
                    "attempt": attempt,
                    "step": step,
                    "time": int(t * 1e6),
                    **metrics,
                }
            )
        writer = self._table()
        if new:
            writer.flush()
            self._metrics.extend(new)
            writer.schema = history_schema(self._metrics)
        writer.append(rows)

    def tick(self) -> None:
        """Write buffered rows if they have waited long enough (called as the driver loop turns)."""
        if self._writer is not None:
            self._writer.append(())

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def load_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The learning curves of a results folder (``DIR`` or ``DIR/history``) as a DataFrame,
    sorted by trial, replicate, attempt and step. Empty when no run reported."""
    import pandas as pd

    folder = Path(path)
    if (folder / HISTORY).is_dir() or (folder / "experiment.json").is_file():
        folder = folder / HISTORY
    if not folder.is_dir():
        if (folder.parent / "experiment.json").is_file():
            return pd.DataFrame(columns=list(history_schema(()).names))
        raise SweeperError(f"{path}: not a results folder (no experiment.json or {HISTORY}/)")
    df = read_folder(folder, keys=()).to_pandas()
    if len(df.columns):
        df = df.sort_values(["trial", "replicate", "attempt", "step"], kind="stable")
    return df.reset_index(drop=True)
