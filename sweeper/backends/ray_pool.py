"""Warm runner actors, one per slot, each fed its next batch while it runs the current one.

A plain Ray task waits, after the one before it ends, for the driver to hear of the end and push
the next (a round trip of milliseconds, more on a busy machine). An actor receives its next batch
while it still runs the current one and goes from one to the next at once: 20 ms runs reached 0.96
of ideal this way against 0.91 with tasks (2 CPUs, Ray 2.60).

Actors hold their resources for the whole sweep. The pool starts ``slots`` actors and waits only
for the first to come up: batches are queued on those still starting (each begins as soon as its
actor is up), so the first run does not wait for 64 worker processes to start on a small machine.
Actors come up one after another (Ray starts a node's workers a few at a time: 64 took 90 s on 2
loaded cores), so an actor is overdue only when ``start_s`` has passed since its own start and since
any actor last came up: the pool stopped growing (on a busy shared cluster, no room for the rest).
The overdue are let go (no other is started in their place), and the batches queued on them are
reported as never started.

An actor that dies (its node lost, or its process killed by a run) fails the batches queued on it;
the engine retries them like any lost task. Who killed it is not always knowable: a batch that ended
just before the next one crashed the process can lose its reply (Ray 2.60 reports it as died with
the actor: 4 of 30 tries here), so the oldest batch left is only the likely culprit, and it alone is
charged an attempt. From the first lost actor on, the pool drains: the backend sends new batches to
plain tasks, where a crash belongs to the batch that made it, and each actor is let go as soon as its
queue is empty, which frees its resources for the tasks. So no run is charged twice for
crashes that were not its own, and a sweep whose runs crash keeps no worker it cannot attribute.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweeper.backends.ray_task import run_batch

if TYPE_CHECKING:
    from sweeper.backends.base import Handle
    from sweeper.run.types import Outcome, Run, RunContext

START_S = 60.0  # longest wait for the pool to grow by one actor


class _Runner:
    _ref: RunContext

    def run(self, runs: Sequence[Run]) -> list[Outcome]:
        return run_batch(self._ref, runs)

    def ready(self, ref: RunContext) -> bool:
        """Keep the run context (no batch carries it: one argument less to serialize each way) and
        import the objective before the first batch (start-up time, not run time)."""
        from sweeper.run.objective import load_objective

        self._ref = ref
        with contextlib.suppress(Exception):  # an import error is reported by each run
            load_objective(ref)
        return True


class WarmPool:
    def __init__(self, options: dict[str, Any], ref: RunContext, slots: int, start_s: float = START_S):
        import ray

        actor_options = {k: v for k, v in options.items() if k != "max_retries"}
        self._cls = ray.remote(_Runner).options(**actor_options, max_restarts=0, max_task_retries=0)
        self._ref = ref
        self.draining = False  # an actor was lost: the backend sends new batches to plain tasks
        self._starting: dict[Any, tuple[Any, float]] = {}  # ready-ref -> (actor not yet up, its start)
        self._load: dict[Any, int] = {}  # live actor (up or starting) -> batches queued on it
        self._owner: dict[Any, Any] = {}  # batch ref -> actor running it
        self._order: dict[Any, list[Any]] = {}  # actor -> its batch refs not yet done, oldest first
        self._unstarted: set[Any] = set()  # batch refs queued on an actor when it died or was let go
        self._dead: set[Any] = set()  # actors seen dead (their batches are being reported)
        self._start_s = start_s
        self._overdue = 0  # actors let go for not coming up in time: their slots get no new one
        self._grew = time.monotonic()  # when an actor last came up
        for _ in range(slots):
            self._start()
        if self._starting:  # the first actor up is enough to begin
            ray.wait(list(self._starting), num_returns=1, timeout=start_s)
        self.poll()

    @property
    def usable(self) -> bool:
        return bool(self._load)

    def submit(self, runs: list[Run], slots: int) -> Handle:
        self.poll()
        if len(self._load) + self._overdue < slots or not self._load:
            self._start()
        starting = {actor for actor, _ in self._starting.values()}
        # The least loaded actor, one that is up before one still starting.
        actor = min(self._load, key=lambda a: (self._load[a], a in starting))
        self._load[actor] += 1
        handle: Handle = actor.run.remote(runs)  # after ready(): an actor runs its calls in order
        self._owner[handle] = actor
        self._order.setdefault(actor, []).append(handle)
        return handle

    def owns(self, handle: Handle) -> bool:
        return handle in self._owner

    def done(self, handle: Handle, result: list[Outcome] | BaseException) -> list[Outcome] | BaseException:
        """A batch ended with ``result`` (outcomes, or the exception that lost it); returns the
        result to report. An actor error means the actor is gone: it takes no more batches, and a
        batch that was still queued behind the running one is reported as NotStarted."""
        import ray

        from sweeper.backends.base import NotStarted

        actor = self._owner.pop(handle, None)
        if actor is None:
            return result
        order = self._order.get(actor, [])
        lost = isinstance(result, ray.exceptions.RayActorError) and handle not in self._unstarted
        if lost and actor not in self._dead:
            # The oldest batch left was (most likely) running when the actor died; the rest never started.
            self._dead.add(actor)
            self._unstarted.update(order[1:])
            self._drop(actor)
            self._drain()
        if handle in order:
            order.remove(handle)
        if not order:
            self._order.pop(actor, None)
            self._dead.discard(actor)
            if self.draining:
                self._drop(actor)
        if actor in self._load:
            self._load[actor] -= 1
        if handle in self._unstarted:
            self._unstarted.discard(handle)
            if isinstance(result, BaseException):
                return NotStarted(f"queued on an actor that died: {result}")
        return result

    def cancel(self, handle: Handle) -> None:
        """An actor's running batch cannot be interrupted, so the actor goes with it."""
        actor = self._owner.get(handle)
        if actor is not None:
            self._drop(actor)

    def close(self) -> None:
        for actor in list(self._load):
            self._drop(actor)

    def _drain(self) -> None:
        """New batches go to plain tasks from now on; let go at once of the actors that hold none."""
        self.draining = True
        for actor in list(self._load):
            if not self._order.get(actor):
                self._drop(actor)

    def _start(self) -> None:
        actor = self._cls.remote()
        ready = actor.ready.remote(self._ref)  # type: ignore[attr-defined]  # a Ray actor method
        self._starting[ready] = (actor, time.monotonic())
        self._load[actor] = 0

    def _drop(self, actor: Any) -> None:
        import ray

        self._load.pop(actor, None)
        for ready_ref, (starting, _) in list(self._starting.items()):
            if starting is actor:
                del self._starting[ready_ref]
                self._unstarted.update(self._order.get(actor, []))  # it never ran any of them
        with contextlib.suppress(Exception):  # already gone with its node, or disconnected
            ray.kill(actor, no_restart=True)

    def poll(self) -> None:
        """Note the actors that came up; let go of those that died starting or are overdue."""
        import ray

        if not self._starting:
            return
        refs = list(self._starting)
        up, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        now = time.monotonic()
        for ready_ref in up:
            actor, _ = self._starting.pop(ready_ref)
            try:
                ray.get(ready_ref)
                self._grew = now
            except Exception:  # it died starting (its node lost)
                self._unstarted.update(self._order.get(actor, []))
                self._drop(actor)
        for actor, started in list(self._starting.values()):
            if now - max(started, self._grew) >= self._start_s:  # the pool stopped growing: no room
                self._overdue += 1
                self._drop(actor)
