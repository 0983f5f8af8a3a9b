"""The report channel between runs and the driver: learning-curve rows in, prune decisions out.

A :class:`Monitor` collects the rows runs report and, when the sweep has a pruner, answers
``should_prune`` from a :class:`~sweeper.search.pruners.Judge`. With the local backend it lives in the
driver process and runs call it directly; with Ray it lives in a small named actor (``num_cpus=0``),
so a run's question costs one actor round trip and never waits for the driver loop. The driver drains
the rows (about every ``POLL_S``) into the ``history/`` table and tells the monitor when trials end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.results.components import COMPONENTS
from sweeper.results.history import Report
from sweeper.results.values import CONFIRM_BASE

if TYPE_CHECKING:
    from sweeper.engine.inputs import Inputs
    from sweeper.results.components import ComponentWriter
    from sweeper.run.types import Outcome
    from sweeper.search.searcher import Searcher
    from sweeper.spec.experiment import Experiment

POLL_S = 0.25  # how often the driver drains reported rows from a Ray monitor


class Monitor:
    """Collects reports; judges pruning when built with a pruner (``judge`` args)."""

    def __init__(self, judge: dict[str, Any] | None = None):
        self._rows: list[Report] = []
        self._judge = None
        if judge is not None:
            from sweeper.search.pruners import Judge

            self._judge = Judge(**judge)

    def send(
        self,
        rows: Sequence[Report],
        ask: tuple[int, int] | None = None,
        *,
        wait: bool = True,
        ended: tuple[int, int, str, float | None] | None = None,
    ) -> bool:
        """Take rows from a run; with ``ask`` = (trial, replicate), answer whether to prune it;
        ``ended`` = (trial, replicate, status, primary value) when the run is over."""
        if rows:
            self._rows.extend(rows)
            if self._judge is not None:
                for trial, replicate, _attempt, step, _t, metrics in rows:
                    if trial < CONFIRM_BASE:
                        self._judge.report(trial, replicate, step, metrics)
        if ended is not None and self._judge is not None and ended[0] < CONFIRM_BASE:
            self._judge.run_ended(*ended)
        # confirmation runs are never pruned: stopping some early would bias the verdict they decide
        if ask is None or self._judge is None or ask[0] >= CONFIRM_BASE:
            return False
        return self._judge.should_prune(*ask)

    def drain(self) -> list[Report]:
        rows, self._rows = self._rows, []
        return rows

    def finish(self, trial: int, status: str, value: float | None, *, wait: bool = True) -> dict[int, float]:
        """A trial ended: the judge records it; returns its curve (step -> value over replicates)."""
        if self._judge is None:
            return {}
        return self._judge.finish(trial, status, value)

    def take_curves(self) -> dict[int, dict[int, float]]:
        """Curves of the trials the judge closed itself since the last call."""
        return self._judge.take_curves() if self._judge is not None else {}

    def replay(self, trials: list[tuple[int, dict[int, float], str, float | None]]) -> None:
        if self._judge is not None:
            self._judge.replay(trials)

    def ping(self) -> bool:
        return True


class RayChannel:
    """A run's end of a Ray monitor, found by name on first use (so it pickles as a name)."""

    def __init__(self, name: str):
        self.name = name
        self._actor: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self._actor = state["name"], None

    def _handle(self) -> Any:
        if self._actor is None:
            self._actor = _actors.get(self.name)
            if self._actor is None:
                import ray

                self._actor = _actors[self.name] = ray.get_actor(self.name)
        return self._actor

    def send(
        self,
        rows: Sequence[Report],
        ask: tuple[int, int] | None = None,
        *,
        wait: bool = True,
        ended: tuple[int, int, str, float | None] | None = None,
    ) -> bool:
        ref = self._handle().send.remote(list(rows), ask, ended=ended)
        if ask is None and not wait:
            return False
        import ray

        return bool(ray.get(ref))


_actors: dict[str, Any] = {}  # per worker process: monitor name -> actor handle


class RayMonitor:
    """The driver's end of a Ray monitor: starts the actor, drains it, tells it trials ended."""

    def __init__(self, name: str, judge: dict[str, Any] | None):
        import ray

        cls: Any = ray.remote(num_cpus=0, max_restarts=0)(Monitor)
        self.name = name
        self._actor: Any = cls.options(name=name).remote(judge)
        ray.get(self._actor.ping.remote())  # fail here, not in the first run, if it cannot start

    def drain(self) -> list[Report]:
        import ray

        rows: list[Report] = ray.get(self._actor.drain.remote())
        return rows

    def finish(self, trial: int, status: str, value: float | None, *, wait: bool = True) -> dict[int, float]:
        import ray

        ref = self._actor.finish.remote(trial, status, value)
        if not wait:
            return {}
        curve: dict[int, float] = ray.get(ref)
        return curve

    def take_curves(self) -> dict[int, dict[int, float]]:
        import ray

        curves: dict[int, dict[int, float]] = ray.get(self._actor.take_curves.remote())
        return curves

    def replay(self, trials: list[tuple[int, dict[int, float], str, float | None]]) -> None:
        import ray

        ray.get(self._actor.replay.remote(trials))

    def close(self) -> None:
        import ray

        with contextlib.suppress(Exception):  # already gone with its cluster
            ray.kill(self._actor)


class Tracker:
    """The engine's hook for what runs report besides their final metrics.

    Writes history rows (from the channel, or carried by outcomes when a run had no channel), output
    components logged by runs and the input components every trial is linked to; keeps the
    driver's Optuna study informed of pruned trials' curves. The engine only holds one when the sweep
    uses any of this, so plain sweeps pay nothing.
    """

    def __init__(
        self,
        folder: Path,
        spec: Experiment,
        searcher: Searcher,
        monitor: Monitor | RayMonitor | None,
        *,
        inputs: Inputs | None = None,
        poll_s: float = 0.0,
    ):
        from sweeper.results.history import HistoryWriter

        self.spec, self.searcher, self.monitor = spec, searcher, monitor
        self.history = HistoryWriter(folder, [m.name for m in spec.metrics])
        self.inputs = inputs
        self.judging = spec.pruner is not None
        self.poll_s = poll_s
        self._polled = 0.0
        self._components: ComponentWriter | None = None
        self._closed = False
        self._reported: set[int] = set()  # trials in flight whose runs reported
        self._curves: dict[int, dict[int, float]] = {}  # closed by the judge, not yet finished here
        if inputs is not None and inputs.records:
            self._components = inputs.writer()
        elif (folder / COMPONENTS / "links").is_dir():  # a resume: settle the links before any run
            self._component_writer()

    def poll(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._polled < self.poll_s:
            return
        self._polled = now
        rows = self.monitor.drain() if self.monitor is not None else None
        if rows:
            self.history.append(rows)
        else:
            self.history.tick()

    def outcomes(self, outcomes: Sequence[Outcome]) -> None:
        reported = False
        for o in outcomes:
            if o.history is not None:  # [] when its reports went through the channel
                reported = True
                self._reported.add(o.trial)
                if o.history:
                    self.history.append(o.history)
            if o.components:
                self._component_writer().outputs(o.trial, o.replicate, o.components)
        if reported and self.judging and self.monitor is not None:
            # one call per batch: the curves of the trials the judge closed as their runs ended
            self._curves.update(self.monitor.take_curves())

    def finished(self, trial: int, status: str, value: float | None) -> None:
        """A trial's last run is in: link its inputs, close it in the judge, curve to the study."""
        if self._components is not None:
            self._components.inputs(trial)
        if not self.judging or self.monitor is None or trial >= CONFIRM_BASE:
            return
        curve = self._curves.pop(trial, None)
        if curve is None and trial in self._reported:  # e.g. a run lost with its worker never said
            curve = self.monitor.finish(trial, status, value)
        elif curve is None:  # it never reported: the judge only needs to count it
            self.monitor.finish(trial, status, value, wait=False)
        self._reported.discard(trial)
        if curve:
            self.searcher.report(trial, curve)

    def replay(self, folder: Path, unfinished: Collection[int]) -> None:
        """On a resume, show the pruner the trials earlier launches finished (their curves come
        from ``history/``), so it does not start again from no finished trial."""
        if not self.judging or self.monitor is None:
            return
        from sweeper.results.history import load_history
        from sweeper.results.table import load

        table, history = load(folder), load_history(folder)
        primary = self.spec.primary.name
        if table.empty or history.empty or primary not in history.columns:
            return
        curves = history.dropna(subset=[primary]).groupby(["trial", "step"])[primary].mean()
        items = []
        for trial, rows in table.groupby("trial"):
            if (
                int(trial) in unfinished
                or int(trial) >= CONFIRM_BASE  # the pruner never judges confirmation runs
                or int(trial) not in curves.index.get_level_values(0)
            ):
                continue
            statuses = set(rows["status"])
            done = rows.loc[rows["status"] == "complete", primary]
            status = (
                "pruned" if "pruned" in statuses else ("complete" if statuses == {"complete"} else "failed")
            )
            value = float(done.mean()) if status == "complete" and len(done) else None
            curve = {int(s): float(v) for s, v in curves.loc[trial].items()}
            items.append((int(trial), curve, status, value))
        if items:
            self.monitor.replay(items)

    def flush(self) -> None:
        """Write what runs reported so far; the trial table calls this before each part it writes,
        so a recorded row's component links and curve are on disk whenever the driver dies (a run's
        reports reach the monitor before its outcome reaches the driver)."""
        if self._closed:
            return
        self.poll(force=True)
        self.history.flush()
        if self._components is not None:
            self._components.flush()

    def _component_writer(self) -> ComponentWriter:
        if self._components is None:
            from sweeper.results.components import ComponentWriter

            self._components = ComponentWriter(self.history.folder.parent, ())
        return self._components

    def close(self) -> None:
        self._closed = True  # the trial table's last flush comes after: everything is written here
        try:
            self.poll(force=True)
        finally:
            self.history.close()
            if self._components is not None:
                self._components.close()
            close = getattr(self.monitor, "close", None)
            if close is not None:
                close()


def open_channel(
    spec: Experiment, backend: str, wants_trial: bool
) -> tuple[Monitor | RayChannel | None, Callable[[], Monitor | RayMonitor | None]]:
    """The runs' end of the report channel, and a function that starts the driver's end once the
    backend is up. In-process it is one :class:`Monitor`; on Ray an actor, started only when runs
    will report (a ``trial`` parameter, a command, a pruner): otherwise reports made through
    ``sweeper.current_trial()`` travel with each run's outcome instead."""
    from sweeper.search.pruners import judge_args

    judge = judge_args(spec)
    if backend == "local":
        monitor = Monitor(judge)
        return monitor, lambda: monitor
    if not (wants_trial or spec.pruner is not None or spec.command is not None):
        return None, lambda: None
    import uuid

    name = f"sweeper-monitor-{uuid.uuid4().hex[:12]}"
    return RayChannel(name), lambda: RayMonitor(name, judge)
