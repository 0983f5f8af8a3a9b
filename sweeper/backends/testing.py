"""A fake in-process backend for tests: the engine's whole world, scripted, on a virtual clock.

:class:`FakeBackend` keeps the :class:`~sweeper.backends.base.Backend` contract (the contract suite
runs it beside ``local`` and ``ray``) and adds what a test of the engine needs and a real backend
cannot give on demand: any number of slots, batches that finish only when ``wait`` is called (so
several are in flight at once), a worker lost under a chosen batch (``lose``), a batch that never
ends (``hang``), a log of every batch submitted and cancelled, and a :class:`Clock` that ``wait``
advances instead of sleeping, so timeouts and backstops play out in microseconds. Runs execute the
real objective of the run context (``sweeper.run.objective.execute``) unless ``outcome`` says
otherwise.

    backend = FakeBackend(ref, slots=4, lose=lambda runs, n: RuntimeError("node lost") if n == 0 else None)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from sweeper.backends.base import Done, Handle
from sweeper.run.objective import execute
from sweeper.run.types import Outcome, Run, RunContext


@dataclass(slots=True)
class Clock:
    """Stands in for the ``time`` module where the engine reads it (``monotonic`` and ``time``)."""

    now: float = 1_000_000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass(slots=True)
class FakeBackend:
    """In-process backend with scripted faults. ``lose(runs, n)`` is asked for the n-th batch
    submitted (0-based) and returns the exception that loses it (``NotStarted`` or any other) or
    None; ``hang(runs)`` says a batch never finishes; ``outcome(run)`` replaces the objective."""

    ref: RunContext | None = None
    slots: int = 2
    depth: int = 2
    lose: Callable[[Sequence[Run], int], BaseException | None] | None = None
    hang: Callable[[Sequence[Run]], bool] | None = None
    outcome: Callable[[Run], Outcome] | None = None
    run_s: float = 0.001  # how long each run takes on the clock (the engine sizes batches from it)
    clock: Clock = field(default_factory=Clock)
    submitted: list[list[Run]] = field(default_factory=list)  # every batch, in submission order
    cancelled: list[list[Run]] = field(default_factory=list)
    closed: bool = False
    peak: int = 0  # most batches in flight at once
    _running: dict[int, list[Run]] = field(default_factory=dict)

    def submit(self, runs: Sequence[Run]) -> int:
        if self.closed:
            raise RuntimeError("FakeBackend.submit after close()")
        handle = len(self.submitted)
        self.submitted.append(list(runs))
        self._running[handle] = list(runs)
        self.peak = max(self.peak, len(self._running))
        return handle

    def wait(self, handles: Collection[Handle], timeout: float | None) -> Done:
        """Every batch among ``handles`` that can finish does so now, oldest first; when none can,
        the clock moves on by ``timeout`` (a real backend would have slept)."""
        done: Done = []
        for handle in sorted(h for h in handles if isinstance(h, int) and h in self._running):
            runs = self._running[handle]
            if self.hang is not None and self.hang(runs):
                continue
            del self._running[handle]
            lost = self.lose(runs, handle) if self.lose is not None else None
            done.append((handle, lost if lost is not None else self._execute(runs)))
        if not done:
            self.clock.sleep(timeout if timeout is not None else 3600.0)
        return done

    def cancel(self, handle: Handle) -> None:
        runs = self._running.pop(handle, None) if isinstance(handle, int) else None
        if runs is not None:
            self.cancelled.append(runs)

    def close(self) -> None:
        self.closed = True
        self._running.clear()

    def _execute(self, runs: list[Run]) -> list[Outcome]:
        out = []
        for run in runs:
            if self.outcome is not None:
                o = self.outcome(run)
            elif self.ref is not None:
                (o,) = execute(self.ref, [run], node="fake")
            else:
                o = complete(run, 0.0)
            start = self.clock.now
            self.clock.now += self.run_s
            out.append(_retimed(o, start, self.clock.now))
        return out


def complete(run: Run, value: float, metric: str = "loss") -> Outcome:
    """A complete outcome of ``run`` reporting ``metric=value`` (times are set by the backend)."""
    return Outcome(run.trial, run.replicate, "complete", {metric: value}, 0.0, 0.0, "fake", run.attempt)


def failed(run: Run, error: str = "ValueError: broken") -> Outcome:
    """The outcome of a run whose objective raised."""
    return Outcome(run.trial, run.replicate, "failed", {}, 0.0, 0.0, "fake", run.attempt, error)


def _retimed(o: Outcome, started: float, ended: float) -> Outcome:
    from dataclasses import replace

    return replace(o, started=started, ended=ended, node=o.node or "fake")
