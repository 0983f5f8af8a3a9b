"""The results folder's schema, as plain data: the columns of its tables, component kinds and the
rule for the experiment name that names the folder.

One home for each of these facts: the trial table's Arrow schema (``results.table.trial_schema``), the
history schema, resume's check of a table part, and the spec's refusal of variable or metric names that
would shadow a column all derive from here. It lives in the spec, the lowest stage that needs it, so
the results stage reads it (through :mod:`sweeper.results.schema`) without the spec importing upward;
it imports nothing.
"""

from __future__ import annotations

import re
from typing import Literal

# The trial table, one row per replicate: (name, Arrow type) of the columns before the variables ...
TRIAL_KEYS: tuple[tuple[str, str], ...] = (
    ("trial", "int64"),
    ("replicate", "int32"),
    ("seed", "int64"),
    ("status", "string"),
)
# ... then the stage: search, or confirm (compare: {confirm: N}); a table written before it existed
# lacks it and is all search ...
TRIAL_STAGE: tuple[tuple[str, str], ...] = (("stage", "string"),)
# ... and after the metrics (times are UTC timestamps in microseconds).
TRIAL_RUN: tuple[tuple[str, str], ...] = (
    ("started_at", "timestamp"),
    ("ended_at", "timestamp"),
    ("duration_s", "float64"),
    ("node", "string"),
    ("attempt", "int32"),
    ("error", "string"),
)
COLUMNS: tuple[tuple[str, str], ...] = TRIAL_KEYS + TRIAL_STAGE + TRIAL_RUN
# history/: one row per (run, step), then one float64 column per metric
HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trial", "int64"),
    ("replicate", "int32"),
    ("attempt", "int32"),
    ("step", "int64"),
    ("time", "timestamp"),
)
# Names a variable or metric must not take: they would shadow a column of either table.
RESERVED = frozenset(name for name, _ in COLUMNS + HISTORY_COLUMNS)

Status = Literal["complete", "failed", "pruned", "timeout"]  # the status column's values

ComponentKind = Literal["dataset", "checkpoint", "model", "job", "metadata"]
COMPONENT_KINDS: tuple[ComponentKind, ...] = ("dataset", "checkpoint", "model", "job", "metadata")

# The experiment's name is its results folder's name: no '/', spaces, quotes or shell characters.
EXPERIMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def run_artifacts(trial: int, replicate: int) -> str:
    """A run's artifact folder, relative to its results folder (or the URI of one)."""
    return f"artifacts/trial-{trial}/rep-{replicate}"


def safe_experiment_name(name: object) -> bool:
    """Whether ``name`` can name a results folder (the pattern, and never '..')."""
    return isinstance(name, str) and bool(EXPERIMENT_RE.fullmatch(name)) and ".." not in name
