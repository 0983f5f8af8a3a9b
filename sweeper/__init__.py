"""sweeper: run machine-learning experiments as seeded variable-space sweeps on Ray, Slurm or a laptop."""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from sweeper.analysis import summary, verdict
    from sweeper.api import SweepResult, launch
    from sweeper.errors import ObjectiveError, SpecError, SweeperError
    from sweeper.report.build import write_report
    from sweeper.results.history import load_history
    from sweeper.results.table import load
    from sweeper.run.runtime import TrialPruned, current_trial
    from sweeper.spec.experiment import Experiment
    from sweeper.spec.model import load_spec

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

# Each public name's module, imported on first use: every Ray worker imports this package (its
# batch function lives in sweeper.backends), and the spec, analysis and report modules cost a
# worker's start 0.15-0.3 CPU s here (64 workers: 10-20 CPU s of a 2-core machine) for nothing.
_HOME = {
    "summary": "sweeper.analysis",
    "verdict": "sweeper.analysis",
    "SweepResult": "sweeper.api",
    "launch": "sweeper.api",
    "ObjectiveError": "sweeper.errors",
    "SpecError": "sweeper.errors",
    "SweeperError": "sweeper.errors",
    "write_report": "sweeper.report.build",
    "load_history": "sweeper.results.history",
    "load": "sweeper.results.table",
    "TrialPruned": "sweeper.run.runtime",
    "current_trial": "sweeper.run.runtime",
    "Experiment": "sweeper.spec.experiment",
    "load_spec": "sweeper.spec.model",
}


def __getattr__(name: str) -> _typing.Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'sweeper' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
