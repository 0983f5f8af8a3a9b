"""sweeper: run machine-learning experiments as seeded variable-space sweeps on Ray, Slurm or a laptop."""

from __future__ import annotations

from sweeper.analysis import summary, verdict
from sweeper.api import SweepResult, launch
from sweeper.errors import ObjectiveError, SpecError, SweeperError
from sweeper.report.build import write_report
from sweeper.results.history import load_history
from sweeper.results.table import load
from sweeper.run.runtime import TrialPruned, current_trial
from sweeper.spec.model import Experiment, load_spec

__all__ = [
    "Experiment",
    "ObjectiveError",
    "SpecError",
    "SweepResult",
    "SweeperError",
    "TrialPruned",
    "current_trial",
    "launch",
    "load",
    "load_history",
    "load_spec",
    "summary",
    "verdict",
    "write_report",
]
__version__ = "0.1.0"
