"""What trial code sees while it runs: its variables and seed, learning-curve reports, pruning,
a per-run artifact folder, and a way to log the components it makes.

An objective gets this object when it has a ``trial`` parameter, or reaches it from anywhere with
``sweeper.current_trial()``. Reports are buffered here and leave through the sweep's channel (a direct
call in-process, a Ray actor on a cluster) at every ``should_prune()``, about once a second, and when
the run ends, so the history streams while long runs are still going. Nothing here touches the
filesystem or the network unless trial code asks for it: a run that never reports costs one object.
"""

from __future__ import annotations

import numbers
import time
from contextvars import ContextVar, Token
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.results.history import HISTORY_COLUMNS, Report
from sweeper.results.schema import run_artifacts
from sweeper.run.types import number

if TYPE_CHECKING:
    from sweeper.run.types import Run, RunContext

FLUSH_S = 1.0  # reports wait at most this long in the worker when nobody asks should_prune()
FLUSH_ROWS = 512

_current: ContextVar[Trial | None] = ContextVar("sweeper_current_trial", default=None)


class TrialPruned(Exception):
    """Raise it when ``should_prune()`` said yes: the run ends ``pruned`` with its last reported values.

    ``optuna.TrialPruned`` is accepted too.
    """


def current_trial() -> Trial:
    """The runtime of the run executing in this thread (for code that has no ``trial`` parameter)."""
    trial = _current.get()
    if trial is None:
        raise RuntimeError(
            "sweeper.current_trial() is only available inside a run of a sweep"
            "\n  fix: call it from the objective (or code it calls) while sweeper runs it"
        )
    return trial


def enter(trial: Trial) -> Token[Trial | None]:
    return _current.set(trial)


def leave(token: Token[Trial | None]) -> None:
    _current.reset(token)


class Trial:
    """One run's view of the sweep. ``id`` is the trial id; ``replicate`` and ``seed`` name the run."""

    __slots__ = ("_artifacts", "_last", "_logged", "_rows", "_sent_at", "_told_prune", "ref", "run")

    def __init__(self, run: Run, ref: RunContext):
        self.run, self.ref = run, ref
        self._rows: list[Report] | None = None
        self._last: dict[str, float] | None = None
        self._logged: list[Any] | None = None
        self._artifacts: Path | None = None
        self._sent_at = 0.0
        self._told_prune = False

    # -- who am I ----------------------------------------------------------------------------------
    @property
    def id(self) -> int:
        return self.run.trial

    @property
    def replicate(self) -> int:
        return self.run.replicate

    @property
    def seed(self) -> int:
        return self.run.seed

    @property
    def attempt(self) -> int:
        return self.run.attempt

    @property
    def params(self) -> dict[str, Any]:
        """The trial's variables (inactive conditional variables are absent)."""
        return dict(self.run.params)

    @property
    def components(self) -> dict[str, str]:
        """Paths of the components the sweep file declares (inputs and shared job outputs)."""
        return dict(self.ref.inputs)

    @property
    def artifact_dir(self) -> Path:
        """``<results>/<experiment>/artifacts/trial-N/rep-R``, created on first use (with results on
        object storage, a folder on the run's machine that goes there when the run ends)."""
        if self._artifacts is None:
            self._artifacts = artifact_dir(self.ref, self.run)
            try:
                self._artifacts.mkdir(parents=True, exist_ok=True)
            except FileNotFoundError:  # another replicate's end removed the empty trial-N just then
                self._artifacts.mkdir(parents=True, exist_ok=True)
        return self._artifacts

    # -- learning curves and pruning ---------------------------------------------------------------
    def report(self, step: int, **metrics: float) -> None:
        """Record metrics at ``step`` (an epoch, an iteration count): a row of the history table.

        Report the primary metric for pruning to judge the run; other names are kept for curves.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(
                f"trial.report(step={step!r}): step must be a whole number >= 0"
                "\n  fix: pass the epoch or iteration count, e.g. trial.report(epoch, loss=...)"
            )
        values: dict[str, float] = {}
        for name, value in metrics.items():
            if name in HISTORY_COLUMNS:
                raise ValueError(
                    f"trial.report(..., {name}=...): {name!r} names a history column"
                    "\n  fix: rename the metric"
                )
            given = number(value)
            if given is None:
                raise TypeError(
                    f"trial.report(..., {name}={value!r:.80}): not a number"
                    "\n  fix: report plain numbers, e.g. float(loss)"
                )
            values[name] = float(given)
        if self._rows is None:  # the first report goes out at once, later ones about every FLUSH_S
            self._rows = []
            self._last = {}
        if self._last is not None:
            self._last.update(values)
        run = self.run
        self._rows.append((run.trial, run.replicate, run.attempt, int(step), time.time(), values))
        channel = self.ref.channel
        if channel is not None and (
            len(self._rows) >= FLUSH_ROWS or time.monotonic() - self._sent_at >= FLUSH_S
        ):
            self._send(wait=False)

    def should_prune(self) -> bool:
        """Whether the sweep's pruner wants this trial stopped, judged from the latest reports of all
        runs (every replicate of a pruned trial is told yes). Always False without ``pruner:``."""
        if self._told_prune:
            return True
        if not self.ref.prune or self.ref.channel is None:
            return False
        rows = self._rows or []
        self._rows = [] if self._rows is not None else None
        self._sent_at = time.monotonic()
        if self.ref.channel.send(rows, (self.run.trial, self.run.replicate)):
            self._told_prune = True
        return self._told_prune

    @property
    def pruned(self) -> bool:
        """Whether ``should_prune()`` has said yes to this run."""
        return self._told_prune

    @property
    def last_metrics(self) -> dict[str, float]:
        """The latest reported value of every metric (what a pruned run is recorded with)."""
        return dict(self._last or {})

    @property
    def lacks_primary(self) -> bool:
        """Whether it reported steps but never the primary metric (pruning then cannot judge it)."""
        return self._last is not None and self.ref.metrics[0] not in self._last

    # -- components --------------------------------------------------------------------------------
    def log_component(self, name: str, path: str | Path, kind: str = "model") -> str:
        """Record a file or folder this run made (a model, a checkpoint, ...) as an output component.

        A path outside the run's artifact folder is copied into it first, so the results folder holds
        everything it lists. Returns the component id (from its content hash).
        """
        from sweeper.results.components import output_component

        record = output_component(name, Path(path), kind, self.artifact_dir)
        if self._logged is None:
            self._logged = []
        self._logged.append(record)
        return record.id

    # -- the executor's side -----------------------------------------------------------------------
    def _send(self, *, wait: bool) -> None:
        rows, self._rows = self._rows or [], []
        self._sent_at = time.monotonic()
        if rows and self.ref.channel is not None:
            self.ref.channel.send(rows, None, wait=wait)

    def close(self, status: str, value: float | None) -> tuple[list[Report] | None, list[Any] | None]:
        """End of the run: ship what is buffered; return reports with no channel to take them (they
        travel with the outcome) and the components logged.

        A run that reported tells a pruning monitor how it ended, so the pruner counts its trial as
        soon as its last replicate ends (not only once the driver has the whole batch)."""
        channel = self.ref.channel
        if self._rows is None or channel is None:
            return self._rows or None, self._logged
        ended = (self.run.trial, self.run.replicate, status, value) if self.ref.prune else None
        if self._rows or ended:
            rows, self._rows = self._rows, []
            # waited for: the rows must be in before the outcome reaches the driver
            channel.send(rows, None, wait=True, ended=ended)
        return [], self._logged  # [] says: it reported, through the channel


def artifact_dir(ref: RunContext, run: Run) -> Path:
    if ref.results_uri is not None:  # object storage: on this machine, put there when the run ends
        from sweeper.run.stored import artifact_dir as on_this_machine

        return on_this_machine(ref, run)
    if not ref.folder:
        raise RuntimeError("this run has no results folder to keep artifacts in")
    return Path(ref.folder) / run_artifacts(run.trial, run.replicate)
