"""Statistics over a trial table: aggregation, the verdict, stability and importance.

Pure functions on DataFrames, so a notebook can call them on any table and the report only renders
their output. One concept a module: ``aggregate`` (which rows count, per-trial summaries),
``inference`` (two-sample tests, intervals, power, Holm), ``arms`` (which rows stand for an arm),
``comparison`` (the verdict's records and JSON), ``hypothesis`` (the verdict per setting),
``across`` (the verdict across settings), ``cost`` (the other metrics), ``rope`` (practical
equivalence), ``confirm`` (search vs confirmation), ``best`` (the trials indistinguishable from the
best), ``stability`` and ``importance``.
"""

from __future__ import annotations

from sweeper.analysis.aggregate import (
    CONFIRM,
    SEARCH,
    aggregate,
    complete_trials,
    completed,
    direction,
    stage_rows,
    summary,
    swept,
)
from sweeper.analysis.arms import arm_values
from sweeper.analysis.best import best_vs_rest
from sweeper.analysis.comparison import ALPHA, Comparison, Verdict
from sweeper.analysis.hypothesis import hypothesis_verdict, verdict
from sweeper.analysis.stability import Stability, stability

__all__ = [
    "ALPHA",
    "CONFIRM",
    "SEARCH",
    "Comparison",
    "Stability",
    "Verdict",
    "aggregate",
    "arm_values",
    "best_vs_rest",
    "complete_trials",
    "completed",
    "direction",
    "hypothesis_verdict",
    "stability",
    "stage_rows",
    "summary",
    "swept",
    "verdict",
]
