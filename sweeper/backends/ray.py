"""Runs on Ray: an embedded Ray by default, a running cluster by address, or the current connection.

Each batch holds runs that ask for the same resources (several runs only when runs are tiny, so a
batch asks for what one run needs). Batches go to warm actors (``ray_pool``, one per slot) when all
runs ask for the same resources and none can time out, else each is a Ray task. Ray retries nothing
itself: the engine resubmits runs lost with a worker, actor or node and counts the attempt.

Connections: inside a driver that is already connected (a Ray job, a notebook that called
``ray.init``) the current connection is used and left open. Otherwise ``address`` (``auto``,
``HOST:PORT``, ``ray://HOST:PORT``, or ``$RAY_ADDRESS``) joins a running cluster, and without one a
private local Ray is started. ``close()`` only ends what this backend began: it disconnects from a
cluster it joined (the cluster keeps running) and stops the local Ray it started.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.backends.ray_task import run_batch
from sweeper.errors import SweeperError
from sweeper.results.store import environ
from sweeper.run.types import Outcome, Run, RunContext

if TYPE_CHECKING:
    from sweeper.backends.base import Done, Handle
    from sweeper.backends.ray_pool import WarmPool
    from sweeper.spec.experiment import Experiment, Resources

SLOTS_REFRESH_S = 5.0  # nodes come and go: recount slots at most this often
PROBE_TIMEOUT_S = 5.0  # a head that does not accept a TCP connection in this long is not there
CLIENT_ATTEMPTS = 3  # Ray Client's server start on the head fails now and then under load


class RayBackend:
    """Runs batches on warm actors (ray_pool) when every run asks for the same resources and no run
    can time out (an actor's run cannot be killed alone); as plain tasks otherwise."""

    def __init__(
        self,
        spec: Experiment,
        ref: RunContext,
        *,
        address: str | None = None,
        actors: bool | None = None,
        connecting: Future[bool] | None = None,
    ):
        """``connecting``: a :func:`connect_soon` begun earlier, to wait for instead of connecting."""
        self.spec, self.ref = spec, replace(ref, keep_output=True)  # workers' prints reach no screen
        self._owns = (connecting or connect_soon(address)).result()
        self._pool: WarmPool | None = None
        try:
            self._start(spec, self.ref, actors)
        except BaseException:
            self.close()
            raise

    def _start(self, spec: Experiment, ref: RunContext, actors: bool | None) -> None:
        import ray

        self._remote = ray.remote(run_batch)
        self._shared = ray.put(ref)  # stored once; plain tasks name it (a function objective is in it)
        self._variants: dict[Resources, Any] = {}
        self._resources = spec.resources
        self._shapes = spec.resources.shapes()
        self._counted = 0.0
        self.slots = self._count_slots()
        if actors is None:
            actors = not spec.resources.cases and getattr(spec, "timeout", None) is None
        if actors:
            from sweeper.backends.ray_pool import WarmPool

            pool = WarmPool(task_options(spec.resources), ref, self.slots)
            self._pool = pool if pool.usable else None
        # Short runs: batches queued per slot. An actor holds its queue, so a driver slowed by a
        # busy machine still finds it fed; a task needs a free worker lease for each, so 2 do.
        self.depth = 3 if self._pool is not None else 2

    # -- the Backend seam ------------------------------------------------------------------------
    def submit(self, runs: Sequence[Run]) -> Handle:
        if self._pool is not None and not self._pool.draining:
            return self._pool.submit(list(runs), self.slots)
        need = self._resources.resolve(runs[0].params)
        remote = self._variants.get(need)
        if remote is None:
            remote = self._variants[need] = self._remote.options(**task_options(need))
        return remote.remote(self._shared, list(runs))  # Ray hands the task the RunContext itself

    def wait(self, handles: Collection[Handle], timeout: float | None) -> Done:
        import ray

        refs = list(handles)
        if not refs:
            return []
        if self._pool is not None:
            self._pool.poll()  # actors still starting: note those up, let go of the overdue
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=True)
        if ready:  # take every other one that is done too, without waiting again
            more, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list({r: None for r in [*ready, *more]})
        out: list[tuple[Any, list[Outcome] | BaseException]] = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref)))
            except Exception as exc:  # worker, actor or node died, or the task was cancelled
                out.append((ref, exc))
        # Successes first: an actor's batches end in order, so a lost batch that is not the oldest
        # left on its actor never started.
        out.sort(key=lambda item: isinstance(item[1], BaseException))
        if self._pool is not None:
            out = [
                (ref, self._pool.done(ref, result)) if self._pool.owns(ref) else (ref, result)
                for ref, result in out
            ]
        lost = any(isinstance(result, BaseException) for _, result in out)
        if lost or time.monotonic() - self._counted > SLOTS_REFRESH_S:
            self.slots = self._count_slots(strict=False)
        return out

    def cancel(self, handle: Handle) -> None:
        import ray

        if self._pool is not None and self._pool.owns(handle):
            self._pool.cancel(handle)
            return
        # Ray 2.60 can abort the driver (a RAY_CHECK in its task manager) when a force-cancel races
        # the task's own completion: a batch that has already finished is left alone.
        if ray.wait([handle], timeout=0)[0]:
            return
        with contextlib.suppress(ValueError):  # an actor batch the pool already reported: nothing to stop
            ray.cancel(handle, force=True)

    def close(self) -> None:
        import ray

        if self._pool is not None and ray.is_initialized():
            self._pool.close()
        if self._owns and ray.is_initialized():
            _shutdown()  # a joined cluster keeps running; only a local Ray we started stops
        self._owns = False

    # -- placement -------------------------------------------------------------------------------
    def _count_slots(self, *, strict: bool = True) -> int:
        """Runs that fit at once on the live nodes, each node counted on its own."""
        import ray

        self._counted = time.monotonic()
        alive = ray.nodes()  # type: ignore[no-untyped-call]
        nodes = [n.get("Resources", {}) for n in alive if n.get("Alive")]
        fits = {shape: sum(fit(node, shape) for node in nodes) for shape in self._shapes}
        if strict:
            for shape, n in fits.items():
                if n == 0:
                    raise SweeperError(unplaceable(shape, nodes, self.spec))
        return max(1, max(fits.values(), default=1))


def connect_soon(
    address: str | None, on_started: Callable[[float, float], None] | None = None
) -> Future[bool]:
    """Join or start Ray in a thread, so that its start (2-3 s here) overlaps the driver's own
    preparation. The future says whether this call made the connection (and so must end it);
    ``on_started(begin, end)`` is told how long it took, ``import ray`` included.

    Ray is imported in the calling thread: in the thread, its import shares the GIL with the
    driver's own imports (optuna, pyarrow) and ended 1.9 s after the spec instead of 0.8 s, so
    ``ray.init`` (seconds of waiting on Ray's processes, which need no GIL) began that much later.

    A local Ray's processes die with the thread that started them (Linux's parent-death signal
    follows the thread), so the thread stays parked until :func:`end_connection` or the backend's
    ``close`` has shut Ray down."""
    begin = time.time()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    future: Future[bool] = Future()
    release = threading.Event()

    def work() -> None:
        if ray.is_initialized():  # inside a Ray job or a notebook that called ray.init: use it
            future.set_result(False)
            return
        try:
            connect(address)
        except BaseException as exc:
            future.set_exception(exc)
            return
        if on_started is not None:
            on_started(begin, time.time())
        _PARKED.append(release)
        future.set_result(True)
        release.wait()

    if (address or os.environ.get("RAY_ADDRESS") or "").startswith("ray://"):
        release.set()  # Ray Client's connection belongs to its thread: connect in this one, now
        work()
        return future
    threading.Thread(target=work, name="sweeper-ray-start", daemon=True).start()
    return future


_PARKED: list[threading.Event] = []  # threads that started a Ray and wait for its shutdown


def _shutdown() -> None:
    import ray

    ray.shutdown()
    while _PARKED:
        _PARKED.pop().set()


def end_connection(connecting: Future[bool]) -> None:
    """Undo a :func:`connect_soon` whose backend was never made (the launch failed before)."""
    import ray

    try:
        owns = connecting.result()
    except Exception:  # it failed itself; nothing to end
        return
    if owns and ray.is_initialized():
        _shutdown()


def connect(address: str | None) -> None:
    """Join ``address`` (or ``$RAY_ADDRESS``), or start a private local Ray that workers of this
    checkout can import sweeper in."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": "error"}
    if address:
        path = _pythonpath()
        env = {"env_vars": {"PYTHONPATH": path}} if path else None
        _probe(address)
        for attempt in range(CLIENT_ATTEMPTS):
            try:
                ray.init(address=address, runtime_env=env, **quiet)
                return
            except ConnectionAbortedError as exc:  # Ray Client's per-driver server failed to start
                failure: Exception = exc
                ray.shutdown()
                time.sleep(1.0 + attempt)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SweeperError(_cannot_join(address, exc)) from None
        raise SweeperError(
            _cannot_join(address, failure)
            + f" (tried {CLIENT_ATTEMPTS} times; the head's logs/ray_client_server_*.err "
            "say why its client server failed)"
        )
    # Workers of a Ray we start inherit our environment: cheaper than a runtime_env (~4 s here).
    path = _pythonpath()
    with environ({"PYTHONPATH": path} if path else {}):
        ray.init(address="local", include_dashboard=False, **quiet)


def _probe(address: str) -> None:
    """Fail in seconds, not minutes, when nothing listens at HOST:PORT (Ray itself waits ~4 min)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise SweeperError(_cannot_join(address, exc)) from None


def _cannot_join(address: str, exc: BaseException) -> str:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return (
        f"Ray address {address}: cannot join a Ray cluster there ({reason}). Fix: start the cluster "
        f"(`ray start --head`) or correct the address (HOST:PORT of the head's GCS, ray://HOST:10001 "
        f"for Ray Client, or auto); leave --address out to run on an embedded local Ray."
    )


def _pythonpath() -> str | None:
    """PYTHONPATH with this sweeper's folder first, or None when workers find it already."""
    pkg_root = str(Path(__file__).resolve().parents[2])  # the folder that holds the sweeper package
    path = os.environ.get("PYTHONPATH", "")
    if pkg_root in path.split(os.pathsep):
        return None
    return os.pathsep.join(p for p in (pkg_root, path) if p)


def task_options(res: Resources) -> dict[str, Any]:
    """Ray task options for one run's resources (Ray sets CUDA_VISIBLE_DEVICES from num_gpus)."""
    options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_retries": 0}
    if res.memory:
        options["memory"] = res.memory
    custom = {k: v for k, v in res.custom if v > 0}
    if custom:
        options["resources"] = custom
    return options


def wanted(res: Resources) -> dict[str, float]:
    """The amounts of Ray resource names one run asks for."""
    out = {"CPU": res.cpus, "GPU": res.gpus, **dict(res.custom)}
    if res.memory:
        out["memory"] = float(res.memory)
    return {k: v for k, v in out.items() if v > 0}


def fit(node: dict[str, float], res: Resources) -> int:
    """How many runs asking for ``res`` fit on one node at once."""
    counts = [int(node.get(name, 0.0) / amount + 1e-9) for name, amount in wanted(res).items()]
    return min(counts) if counts else max(1, int(node.get("CPU", 1)))


def unplaceable(res: Resources, nodes: list[dict[str, float]], spec: Experiment) -> str:
    """Say which amount no node has, what the largest node has, and how to fix it."""
    need = wanted(res)
    short = [name for name, amount in need.items() if all(n.get(name, 0.0) < amount for n in nodes)]
    names = short or list(need)
    best = {name: max((n.get(name, 0.0) for n in nodes), default=0.0) for name in names}
    asks = ", ".join(f"{need[n]:g} {n}" for n in names)
    has = ", ".join(f"{best[n]:g} {n}" for n in names)
    if short:
        why = f"no node of the Ray cluster has that much (the largest has {has})"
    else:
        why = "no single node has all of it at once"
    keys = {"CPU": "cpus", "GPU": "gpus", "memory": "memory"}
    fields = ", ".join(f"resources.{keys.get(n, 'custom.' + n)}" for n in names)
    return (
        f"{spec.source}: resources: a run asks for {asks}, but {why}; it would wait forever"
        f"\n  fix: lower {fields}, or run on a cluster whose nodes have it (--address)"
    )
