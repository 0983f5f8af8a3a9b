"""Sweeper at cluster scale, beside Ray Tune, in one invocation (issue 16's workloads).

    python bench/scale.py            # the full sizes (about 45 minutes on 2 cores)
    python bench/scale.py --quick    # small sizes at 16 slots, to check it runs (18 minutes: ~20 fresh Rays)
    python bench/scale.py --only 1,4 # some workloads

Sleeping trials need a slot but no core, so Ray declares more CPUs than the machine has. Every
measurement runs in a fresh Python process (the driver); the parent samples the resident memory of
the driver's child processes and of the ``ray start`` nodes it started (Ray's daemons and workers).

Workloads:
 1. Many slots: N x 1 s trials at 64 slots, on a local Ray (``num_cpus=64``) and on a 3-node
    ``ray start`` cluster on 127.0.0.1 declaring 64 CPUs; warm actors against plain tasks; Ray Tune
    on the same shape (fewer trials). Overhead = run span / ideal - 1 (ideal = N x 1 s / 64).
 2. Adaptive search at 64 slots of 1 s trials: TPE and CMA-ES. Slot utilisation = busy
    slot-seconds / available (64 x run span; the warm actors up, from the pool's own count; the
    steady window once all are up); each ask's CPU and wall time against the trials told so far;
    a plain Optuna TPE ask beside sweeper's, in the same state, out of the sweep.
 3. A million trials: random search of zero-cost trials (driver RSS at 10^4 and 10^6, the table
    read while the sweep runs, ``sweeper.load`` of the result, resume after SIGKILL), and a 10^6-point
    grid (time from launch to its first run).
 4. Start-up: a small sweep's ``--profile`` breakdown against ``ray.init``/``ray.shutdown`` alone,
    a resume with nothing left to run (must not start Ray), and the same launch again with each step
    to its first run timed: the driver's, the processes' starts, the first actor's from Ray's timeline.
 5. CPU per run at 64 slots of 1 s sleeps: each process's CPU time (``/proc``, via psutil) sampled
    while the sweep runs, split into the driver, the workers, the raylet, the GCS and Ray's other
    daemons, over the steady part (once every actor is up) and divided by the runs that ended in it;
    beside Ray alone (64 actors fed the same sleeps, and 64 idle actors) and, with ``--before DIR``,
    the same sweep on another checkout.
 6. Ramp: 64 runs of 30 s sleep on a fresh local Ray (``num_cpus=64``), seconds from ray.init's
    return until the first, the middle and the last has started: Ray's own floor (bare actors and
    bare tasks, each given its parameters and returning a result) beside sweeper's warm pool, and
    with Ray's knobs (``RAY_worker_maximum_startup_concurrency``, ``RAY_prestart_worker_first_driver``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SLOTS = 64
NODE_STORE_BYTES = 2**30  # each ``ray start`` node's object store: sleeps need little; 3 nodes on 24 GiB
ROWS = {"local", "tasks", "cluster", "tune"}  # workload 1's rows (``--rows``)
NODE_START_S = 300.0  # one node's registration, on 2 cores loaded by others' suites


# -- the child: one measurement ------------------------------------------------------------------
def _spec(name: str, n: int, method: str, seconds: float, objective: str = "nap") -> dict[str, Any]:
    variables: dict[str, Any] = {k: {"float": [-1.0, 1.0]} for k in "xyz"}
    if objective == "nap":
        variables["seconds"] = seconds
    return {
        "experiment": name,
        "objective": f"objectives:{objective}",
        "metrics": [{"value": "minimize"}],
        "variables": variables,
        "search": {"method": method, "trials": n, "seed": 0},
        "resources": {"cpus": 1},
    }


def _grid_spec(n_side: int) -> dict[str, Any]:
    return {
        "experiment": "bench-grid",
        "objective": "objectives:quadratic",
        "metrics": [{"value": "minimize"}],
        "variables": {k: {"int": [0, n_side - 1]} for k in "xyz"},
        "search": {"method": "grid"},
        "resources": {"cpus": 1},
    }


def _ray_init(args: argparse.Namespace) -> float:
    import ray

    begin = time.time()
    if args.address:
        ray.init(address=args.address, log_to_driver=False, logging_level="error")
    else:
        ray.init(
            address="local",
            num_cpus=args.cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="error",
        )
    return time.time() - begin


def _peak_mib() -> float:
    """This process's peak RSS so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _table_stats(folder: Path) -> dict[str, Any]:
    import pyarrow.compute as pc

    from sweeper.results.reading import read_folder

    t = read_folder(folder / "trials", columns=["trial", "replicate", "started_at", "ended_at", "duration_s"])
    started = pc.min(t.column("started_at")).value / 1e6
    ended = pc.max(t.column("ended_at")).value / 1e6
    busy = float(pc.sum(t.column("duration_s")).as_py())
    return {"rows": t.num_rows, "span": ended - started, "busy": busy, "first_start": started}


def child_sweeper(args: argparse.Namespace) -> dict[str, Any]:
    import sweeper
    from sweeper.backends import ray as ray_backend
    from sweeper.search.searcher import Searcher

    out: dict[str, Any] = {}
    if args.backend == "ray" and (args.cpus or args.address):
        out["ray_init"] = _ray_init(args)  # the driver joins this connection
    if args.breakdown:
        out["marks"] = _mark_first_run()
    if args.tasks:  # plain tasks instead of warm actors, to compare
        original = ray_backend.RayBackend.__init__

        def tasks_only(self: Any, *a: Any, **kw: Any) -> None:
            original(self, *a, **{**kw, "actors": False})

        ray_backend.RayBackend.__init__ = tasks_only  # type: ignore[method-assign]
    asks: list[tuple[int, float, float, float]] = []  # (told before it, wall s, CPU s, when) per ask
    up: list[tuple[float, int]] = []  # (when, warm actors up) each time the count changed
    if args.method in ("tpe", "cmaes"):
        ask, tell, told = Searcher.ask, Searcher.tell, [0]

        def timed(self: Searcher) -> Any:
            when, begin, cpu = time.time(), time.perf_counter(), time.thread_time()
            proposal = ask(self)
            if proposal is not None:
                asks.append((told[0], time.perf_counter() - begin, time.thread_time() - cpu, when))
            return proposal

        def counted(self: Searcher, *a: Any) -> None:
            told[0] += 1
            tell(self, *a)

        Searcher.ask, Searcher.tell = timed, counted  # type: ignore[method-assign]
        if args.backend == "ray":
            from sweeper.backends import ray_pool

            poll = ray_pool.WarmPool.poll

            def noted(self: Any) -> None:
                poll(self)
                n = len(self._load) - len(self._starting)
                if not up or up[-1][1] != n:
                    up.append((time.time(), n))

            ray_pool.WarmPool.poll = noted  # type: ignore[method-assign]
    out["compactions"] = _note_compactions()
    spec_data = (
        _grid_spec(args.n)
        if args.method == "grid"
        else _spec(args.name, args.n, args.method, args.seconds, args.objective)
    )
    spec = sweeper.load_spec(spec_data, root=str(HERE))
    launched = time.time()
    sweep = sweeper.launch(spec, results=args.results, backend=args.backend, profile=args.profile)
    out["launch_s"] = time.time() - launched
    out["launched_at"] = launched
    out["launch_peak_mib"] = _peak_mib()  # the driver's own peak, before this bench reads the table
    s = sweep.stats
    out["first_new_after_launch"] = (s.first_new - launched) if s.first_new else None
    out.update(_table_stats(sweep.path))
    if asks:
        out["asks"] = asks
        out.update(_slot_use(sweep.path, up, asks, args.slots))
    return out


def _note_compactions() -> dict[str, Any]:
    """The trial table's compactions: each background one's seconds, and the final one's in close()."""
    from sweeper.results.table import TableWriter

    noted: dict[str, Any] = {}
    close = TableWriter.close

    def timed_close(self: TableWriter) -> None:
        begin = time.perf_counter()
        close(self)
        if self.folder.name == "trials":
            noted.update(background=self.compactions, close_s=time.perf_counter() - begin)

    TableWriter.close = timed_close  # type: ignore[method-assign]
    return noted


def _mark_first_run() -> dict[str, Any]:
    """Wrap the steps between a launch and its first run, to time each (absolute times). The worker
    side comes from Ray's own timeline, read before the pool ends its actors: the first actor's
    creation and its ``ready`` call (deserializing the run context, then importing the objective),
    and the start of the worker process that ran them."""
    import psutil

    from sweeper.backends import ray as ray_backend
    from sweeper.backends import ray_pool

    marks: dict[str, Any] = {}
    connect, pool_init, pool_close = ray_backend.connect, ray_pool.WarmPool.__init__, ray_pool.WarmPool.close

    def timed_connect(address: str | None) -> None:
        cpu, mine = _cpu_s(), time.thread_time()
        marks["ray.init begins"] = time.time()
        connect(address)
        marks["ray.init returns"] = time.time()
        marks["driver CPU s in ray.init"] = (_cpu_s() - cpu, time.thread_time() - mine)

    def timed_pool(self: Any, *a: Any, **kw: Any) -> None:
        marks["pool creates its actors"] = time.time()
        pool_init(self, *a, **kw)
        marks["pool sees its first actor up"] = time.time()

    def read_then_close(self: Any) -> None:  # before the pool kills its actors, with their unsent events
        import ray

        events = ray.timeline()  # type: ignore[no-untyped-call]  # waits 1 s for the workers' events
        runner = {e["tid"] for e in events if "_Runner" in e["cat"]}
        marks["events"] = [
            {"cat": e["cat"], "tid": e["tid"], "ts": e["ts"] / 1e6, "dur": e["dur"] / 1e6}
            for e in events
            if e["tid"] in runner
        ]
        marks["processes"] = sorted(
            (_started_at(p.pid), p.name() if p.name().startswith("ray::") else Path(p.cmdline()[0]).name)
            for p in psutil.Process().children(recursive=True)
        )
        pool_close(self)

    ray_backend.connect = timed_connect  # type: ignore[assignment]
    ray_pool.WarmPool.__init__ = timed_pool  # type: ignore[method-assign]
    ray_pool.WarmPool.close = read_then_close  # type: ignore[method-assign]
    return marks


def _started_at(pid: int) -> float:
    """When a process started, as time.time() would have said then: from its start in clock ticks
    since boot (psutil's create_time adds a boot time rounded to the second)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _slot_use(
    folder: Path, up: list[tuple[float, int]], asks: list[tuple[int, float, float, float]], slots: int
) -> dict[str, Any]:
    """Busy slot-seconds against the slots that were up (warm actors, from the pool's own count), and
    over the steady window (every slot up, until the last run began), with the asks' CPU in it."""
    import numpy as np

    from sweeper.results.reading import read_folder

    t = read_folder(folder / "trials")
    start = np.asarray(t.column("started_at").to_numpy(), dtype=float) / 1e6
    end = np.asarray(t.column("ended_at").to_numpy(), dtype=float) / 1e6
    last = float(end.max())
    edges = [*up, (last, 0)]
    avail = sum(n * (max(t1, t0) - t0) for (t0, n), (t1, _) in itertools.pairwise(edges) if t0 < last)
    full = next((when for when, n in up if n >= slots), None)
    out: dict[str, Any] = {"up_slot_s": avail, "all_up_after": (full - float(start.min())) if full else None}
    lo, hi = full or float(start.min()), float(start.max())
    if hi > lo:
        inside = np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0, None).sum()
        out["steady"] = {
            "s": hi - lo,
            "util": float(inside) / (slots * (hi - lo)),
            "ask_cpu_s": sum(c for _, _, c, when in asks if lo <= when < hi),
            "asks": sum(1 for *_, when in asks if lo <= when < hi),
        }
    return out


def child_asks(args: argparse.Namespace) -> dict[str, Any]:
    """One TPE ask of a plain Optuna study against sweeper's searcher, in the same state: the same
    space, ``n`` trials told and ``pending`` running (what constant liar sees at 64 slots), built
    as a resume builds it (add_trial, then enqueued running trials); asks alternate between the
    two so both see the same load. Each ask is followed by the tell of the oldest running trial."""
    import random
    from collections import deque

    import optuna

    import sweeper
    from sweeper.search.searcher import Searcher

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = random.Random(args.n)

    def point() -> dict[str, float]:
        return {k: rng.uniform(-1.0, 1.0) for k in "xyz"}

    def value(p: dict[str, Any]) -> float:
        return float((p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2 + (p["z"] - 0.1) ** 2)

    told = [(k, point()) for k in range(args.n)]
    running = [(args.n + i, point()) for i in range(args.pending)]
    spec = sweeper.load_spec(_spec("asks", args.n + args.pending + args.rounds, "tpe", 1.0), root=str(HERE))
    ours = Searcher(spec)
    ours.restore([(k, {**p, "seconds": 1.0}, [value(p)], "complete") for k, p in told], running)
    ours_pending = deque(running)

    dist = optuna.distributions.FloatDistribution(-1.0, 1.0)
    plain = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, constant_liar=True))
    for _, p in told:
        trial = optuna.trial.create_trial(params=p, distributions=dict.fromkeys(p, dist), value=value(p))
        plain.add_trial(trial)

    def plain_ask() -> tuple[Any, dict[str, float]]:
        trial = plain.ask()
        return trial, {k: trial.suggest_float(k, -1.0, 1.0) for k in "xyz"}

    plain_pending: deque[tuple[Any, dict[str, float]]] = deque()
    for _, p in running:
        plain.enqueue_trial(p)
        plain_pending.append(plain_ask())
    cpu: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(args.rounds):
        begin = time.thread_time()
        plain_pending.append(plain_ask())
        cpu["plain"].append(time.thread_time() - begin)
        trial, p = plain_pending.popleft()
        plain.tell(trial, value(p))
        begin = time.thread_time()
        proposal = ours.ask()
        cpu["ours"].append(time.thread_time() - begin)
        if proposal is None:
            raise RuntimeError("the searcher's budget ran out: rounds must fit in its trials")
        ours_pending.append((proposal.trial, proposal.params))
        k, p = ours_pending.popleft()
        ours.tell(k, [value(p)], "complete")
    return {k: sorted(v)[len(v) // 2] for k, v in cpu.items()}


def child_ray_alone(args: argparse.Namespace) -> dict[str, Any]:
    begin = time.time()
    import ray

    imported = time.time() - begin
    init = _ray_init(args)
    begin = time.time()
    ray.get(ray.remote(lambda: 1).remote())
    first_task = time.time() - begin
    begin = time.time()
    ray.shutdown()
    return {"import": imported, "ray_init": init, "first_task": first_task, "shutdown": time.time() - begin}


def child_nodes(args: argparse.Namespace) -> None:
    """Print how many nodes the GCS at ``--address`` holds alive. Through a GCS client, not
    ``ray.init``: a driver registers a job, and a node's raylet prestarts workers for a first driver."""
    from ray._raylet import GcsClient  # what `ray health-check` uses; no public call lists nodes without one

    nodes = GcsClient(address=args.address).get_all_node_info(timeout=10)
    print(sum(1 for info in nodes.values() if info.state == 0))  # GcsNodeInfo.GcsNodeState.ALIVE


def child_tune(args: argparse.Namespace) -> dict[str, Any]:
    import ray
    from objectives import nap
    from ray import tune

    out = {"ray_init": _ray_init(args)}

    def trainable(config: dict[str, Any]) -> dict[str, Any]:
        t = time.time()
        value = nap(config["x"], config["y"], config["z"], args.seconds)
        return {"value": value, "t0": t, "t1": time.time()}

    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={k: tune.uniform(-1, 1) for k in "xyz"},
            tune_config=tune.TuneConfig(
                num_samples=args.n,
                max_concurrent_trials=args.slots,
                reuse_actors=True,
                metric="value",
                mode="min",
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        df = tuner.fit().get_dataframe()
    ray.shutdown()
    span = float(df["t1"].max() - df["t0"].min())
    busy = float((df["t1"] - df["t0"]).sum())
    return {**out, "rows": len(df), "span": span, "busy": busy}


def child_ramp(args: argparse.Namespace) -> dict[str, Any]:
    """How long ``args.cpus`` runs of ``args.seconds`` take until all have started, from ray.init's
    return: Ray's own floor (bare actors, bare tasks) or sweeper's sweep on the same fresh Ray."""
    import ray

    out: dict[str, Any] = {"ray_init": _ray_init(args)}
    t0 = time.time()
    k, seconds = args.cpus, args.seconds
    if args.method in ("actors", "tasks"):
        # Each run gets its parameters and returns a result, as any real run does: a worker's first
        # argument or result makes it set up Ray's serializers (it imports pydantic, pyarrow, numpy:
        # about 0.4 CPU s here, a third of a worker's start), so a bare call without either would
        # skip a cost no real run can.
        def nap(params: dict[str, float]) -> tuple[float, float, int]:
            begin = time.time()
            time.sleep(seconds)
            return begin, time.time(), os.getpid()

        params = {"x": 0.1, "y": 0.2, "z": 0.3}
        if args.method == "actors":

            @ray.remote(num_cpus=1)
            class Napper:
                def nap(self, params: dict[str, float]) -> tuple[float, float, int]:
                    return nap(params)

            refs = [Napper.remote().nap.remote(params) for _ in range(k)]  # type: ignore[attr-defined]
        else:
            refs = [ray.remote(num_cpus=1, max_retries=0)(nap).remote(params) for _ in range(k)]
        spans = [(begin, end) for begin, end, _ in ray.get(refs)]
    else:
        import sweeper

        spec = sweeper.load_spec(_spec("bench-ramp", k, "random", seconds), root=str(HERE))
        folder = sweeper.launch(spec, results=args.results).path
        from sweeper.results.reading import read_folder

        t = read_folder(folder / "trials")
        starts = [x.value / 1e6 for x in t.column("started_at")]
        ends = [x.value / 1e6 for x in t.column("ended_at")]
        spans = list(zip(starts, ends, strict=True))
    starts = sorted(begin for begin, _ in spans)
    # Runs that are running at once, at its most: below k, some ended before the last began.
    peak = max(sum(1 for b, e in spans if b <= t < e) for t in starts)
    return {
        **out,
        "first": starts[0] - t0,
        "half": starts[len(starts) // 2] - t0,
        "last": starts[-1] - t0,
        "peak": peak,
    }


def child_load(args: argparse.Namespace) -> dict[str, Any]:
    import sweeper

    begin = time.time()
    df = sweeper.load(args.results)
    return {"load_s": time.time() - begin, "rows": len(df)}


def _kind(proc: Any, me: int) -> str | None:
    """Which part of the run path a process is: the driver, a Ray worker, or one of Ray's daemons."""
    import psutil

    if proc.pid == me:
        return "driver"
    try:
        name, cmd = proc.name(), " ".join(proc.cmdline()[:2])
    except psutil.Error:
        return None
    if "gcs_server" in name or "gcs_server" in cmd:
        return "gcs"
    if name == "raylet" or cmd.split(" ")[0].endswith("raylet"):
        return "raylet"
    if name.startswith("ray::") and not name.startswith(("ray::Dashboard", "ray::RuntimeEnv")):
        return "workers"
    if "default_worker.py" in cmd:
        return "workers"
    return "daemons"


class CpuSampler(threading.Thread):
    """Every 0.25 s: the runs ended so far and the CPU seconds of the driver and every process below it
    (a local Ray's daemons and workers), by part; its own thread's CPU is taken off the driver's."""

    def __init__(self, runs: Any, pool: Any = lambda: None):
        super().__init__(daemon=True)
        self.runs, self.pool = runs, pool
        self.samples: list[tuple[float, int, dict[str, float], int, int]] = []
        self._kinds: dict[int, str | None] = {}
        self._done = threading.Event()

    def run(self) -> None:
        import psutil

        me, own = psutil.Process(), 0.0
        while not self._done.wait(0.25):
            begin = time.thread_time()
            cpu: dict[str, float] = {}
            for proc in [me, *me.children(recursive=True)]:
                if proc.pid not in self._kinds:
                    self._kinds[proc.pid] = _kind(proc, me.pid)
                kind = self._kinds[proc.pid]
                if kind is None:
                    continue
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    cpu[kind] = cpu.get(kind, 0.0) + t.user + t.system
            own += time.thread_time() - begin
            cpu["driver"] = cpu.get("driver", 0.0) - own
            pool = self.pool()
            up = len(pool._load) - len(pool._starting) if pool is not None else 0
            starting = len(pool._starting) if pool is not None else 0
            self.samples.append((time.time(), self.runs(), cpu, up, starting))

    def result(self, n: int) -> dict[str, Any]:
        """CPU per run over the steady part: from once no actor is still starting (and a tenth of the
        runs ended) to 95 % of the runs; the whole middle if the pool never filled."""
        self._done.set()
        self.join()
        s = self.samples
        begin = next((x for x in s if x[4] == 0 and x[3] > 0 and x[1] >= 0.1 * n), None)
        end = next((x for x in reversed(s) if x[1] <= 0.95 * n), None)
        if begin is None or end is None or end[1] - begin[1] < 0.1 * n:
            begin = next(x for x in s if x[1] >= 0.2 * n)
            end = next(x for x in reversed(s) if x[1] <= 0.9 * n)
        runs, seconds = end[1] - begin[1], end[0] - begin[0]
        parts = {k: 1000 * (end[2].get(k, 0.0) - begin[2].get(k, 0.0)) / runs for k in end[2]}
        ramp = next((x[0] for x in s if x[4] == 0 and x[3] > 0), None)
        first = next((x[0] for x in s if x[3] > 0), None)
        return {
            "window_runs": runs,
            "window_s": seconds,
            "ms_per_run": parts,
            "actors_up": end[3],
            "ramp_s": (ramp - first) if ramp is not None and first is not None else None,
        }


def child_cpu(args: argparse.Namespace) -> dict[str, Any]:
    """One run-path CPU measurement: sweeper's sweep, or Ray alone with the same sleeps on actors."""
    import ray

    out: dict[str, Any] = {"ray_init": _ray_init(args)}
    if args.method == "ray":
        from objectives import nap

        @ray.remote(num_cpus=1)
        class Sleeper:
            def ready(self) -> bool:
                return True

            def nap(self, seconds: float) -> float:
                return nap(0.1, 0.2, 0.3, seconds)

        actors = [Sleeper.remote() for _ in range(args.cpus)]  # type: ignore[attr-defined]
        ray.get([a.ready.remote() for a in actors])
        if args.n == 0:  # idle: what 64 actors that wait for work cost
            time.sleep(10.0)
            sampler = CpuSampler(lambda: 0)
            sampler.start()
            time.sleep(20.0)
            sampler._done.set()
            sampler.join()
            a, b = sampler.samples[0], sampler.samples[-1]
            out["idle_ms_per_s"] = {k: 1000 * (b[2][k] - a[2].get(k, 0.0)) / (b[0] - a[0]) for k in b[2]}
            return out
        done = [0]
        sampler = CpuSampler(lambda: done[0])
        sampler.start()
        pending = [actors[i % len(actors)].nap.remote(args.seconds) for i in range(args.n)]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            done[0] += len(ready)
        out.update(sampler.result(args.n))
        return out
    import sweeper
    from sweeper.engine import loop

    engines: list[Any] = []
    init = loop.Engine.__init__

    def keep(self: Any, *a: Any, **kw: Any) -> None:
        init(self, *a, **kw)
        engines.append(self)

    loop.Engine.__init__ = keep  # type: ignore[method-assign]
    sampler = CpuSampler(
        lambda: engines[0].stats.runs_done if engines else 0,
        lambda: getattr(engines[0].backend, "_pool", None) if engines else None,
    )
    sampler.start()
    spec = sweeper.load_spec(_spec("bench-cpu", args.n, "random", args.seconds), root=str(HERE))
    sweeper.launch(spec, results=args.results)
    out.update(sampler.result(args.n))
    out["sweeper"] = str(Path(sweeper.__file__).parents[1])
    return out


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    start = time.time()
    kinds = {
        "sweeper": child_sweeper,
        "ray": child_ray_alone,
        "tune": child_tune,
        "load": child_load,
        "cpu": child_cpu,
        "ramp": child_ramp,
        "asks": child_asks,
    }
    out = kinds[args.child](args)
    out["wall"] = time.time() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime
    out["rss_mib"] = usage.ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


# -- the parent: processes, memory, tables -------------------------------------------------------
def _env(src: Path = REPO) -> dict[str, str]:
    """The children's environment; ``src``: the checkout whose sweeper they import."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), str(HERE), os.environ.get("PYTHONPATH")) if p)
    env.pop("RAY_ADDRESS", None)
    return env


class Sampler(threading.Thread):
    """Peak total RSS of the processes below some roots (the driver's children, the Ray nodes)."""

    def __init__(self, roots: list[int], skip: int | None = None):
        super().__init__(daemon=True)
        self.roots, self.skip, self.peak, self._done = roots, skip, 0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self._done.wait(1.0):
            total = 0
            for root in self.roots:
                try:
                    procs = psutil.Process(root).children(recursive=True)
                    if root != self.skip:
                        procs.append(psutil.Process(root))
                except psutil.Error:
                    continue
                for p in procs:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def measure(
    kind: str,
    *flags: str,
    nodes: list[int] = (),
    timeout: float = 1800,
    kill_at_rows: int = 0,
    src: Path = REPO,
    env: dict[str, str] | None = None,
    **kw: Any,
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, *flags]
    for key, value in kw.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    # Ray puts the driver's working directory on its workers' sys.path: the checkout's own
    child_env = {**_env(src), **(env or {})}
    proc = subprocess.Popen(
        cmd, cwd=src, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler = Sampler([proc.pid, *nodes], skip=proc.pid)
    sampler.start()
    killed = None
    if kill_at_rows:
        killed = _kill_when(proc, Path(kw["results"]), kill_at_rows)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        ray_rss = sampler.stop()
    if killed is not None:
        return killed
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[7:]), "ray_rss_mib": ray_rss / 2**20, "stderr": stderr}
    return {"error": (stderr or stdout).strip().splitlines()[-3:]}


def _kill_when(proc: subprocess.Popen[str], results: Path, rows: int) -> dict[str, Any]:
    """SIGKILL the driver once its table has ``rows`` rows; report what a reader saw on the way."""
    import sweeper

    reads: list[dict[str, Any]] = []
    while proc.poll() is None:
        time.sleep(2.0)
        folder = next(results.glob("*/trials"), None)
        if folder is None:
            continue
        begin = time.time()
        try:
            n = len(sweeper.load(folder))
        except Exception as exc:  # a mid-sweep read that fails is a finding, not a crash of the bench
            reads.append({"error": str(exc)[:200]})
            continue
        files = [p.name for p in folder.iterdir() if p.suffix == ".parquet"]  # after: what it (likely) read
        compact = [f for f in files if f.startswith("compact-")]
        reads.append({"rows": n, "read_s": time.time() - begin, "files": len(files), "compact": compact})
        if n >= rows:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return {"reads": reads, "killed_at": time.time()}
    return {"reads": reads, "error": "the sweep ended before it was killed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nodes(cpus: list[int], tmp: str) -> tuple[str, list[subprocess.Popen[bytes]]]:
    """A cluster of ``ray start --block`` nodes on 127.0.0.1, each in its own process group.

    One node at a time, each registered before the next starts: nodes on one host share the head's
    session folder, where Ray names each node's sockets and logs by the first free index
    (``sockets/plasma_store.1``) without creating the file. Two workers started together took the
    same name, the second raylet died on ``bind: Address already in use`` and its ``ray start``
    exited, and the bench waited for a node that was gone (the fourth pass's 600 s). The head's
    fixed ports (Ray Client 10001, dashboard 8265) get free ones: others' clusters here use them."""
    port = _free_port()
    address = f"127.0.0.1:{port}"
    ray_bin = str(Path(sys.executable).with_name("ray"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i, n in enumerate(cpus):
            where = (
                [
                    "--head",
                    f"--port={port}",
                    "--include-dashboard=false",
                    f"--dashboard-port={_free_port()}",
                    f"--ray-client-server-port={_free_port()}",
                    f"--temp-dir={tmp}",
                ]
                if i == 0
                else [f"--address={address}"]
            )
            cmd = [
                ray_bin,
                "start",
                "--block",
                f"--num-cpus={n}",
                f"--object-store-memory={NODE_STORE_BYTES}",
                "--node-ip-address=127.0.0.1",
                f"--dashboard-agent-listen-port={_free_port()}",
                *where,
            ]
            with open(Path(tmp) / f"node{i}.log", "wb") as log:  # `ray start`'s own output, for a failure
                procs.append(
                    subprocess.Popen(cmd, env=_env(), stdout=log, stderr=log, start_new_session=True)
                )
            if i == 0:
                _wait_health(ray_bin, address, procs[0])
            _wait_nodes(address, i + 1, procs, tmp)
    except BaseException:
        stop_nodes(procs)
        raise
    return address, procs


def _wait_nodes(address: str, n: int, procs: list[subprocess.Popen[bytes]], tmp: str) -> None:
    """Until ``n`` nodes are alive; fail at once, with its output, when a node's ``ray start`` exits."""
    deadline = time.time() + NODE_START_S
    while time.time() < deadline:
        for i, p in enumerate(procs):
            if p.poll() is not None:
                tail = (Path(tmp) / f"node{i}.log").read_text(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(f"node {i}'s `ray start` exited ({p.returncode}): {' / '.join(tail)}")
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", "nodes", "--address", address],
            env=_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.stdout.strip().isdigit() and int(out.stdout) >= n:
            return
        time.sleep(1)
    raise RuntimeError(f"{n} Ray nodes were not alive within {NODE_START_S:.0f} s")


def _wait_health(ray_bin: str, address: str, head: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if head.poll() is not None:
            raise RuntimeError(f"the Ray head at {address} exited ({head.returncode})")
        if (
            subprocess.run(
                [ray_bin, "health-check", "--address", address], env=_env(), capture_output=True, check=False
            ).returncode
            == 0
        ):
            return
        time.sleep(1)
    raise RuntimeError(f"the Ray head at {address} did not come up")


def stop_nodes(procs: list[subprocess.Popen[bytes]]) -> None:
    """End the nodes this script started: their process groups, by the ids we hold."""
    for p in reversed(procs):
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(title: str, head: list[str], rows: list[list[Any]]) -> None:
    print(f"\n### {title}", flush=True)
    print(_row(head))
    print("|" + "---|" * len(head))
    for r in rows:
        print(_row(r), flush=True)


def _fail(name: str, r: dict[str, Any], width: int) -> list[Any]:
    return [name, f"failed: {r['error']}", *([""] * (width - 2))]


# -- workloads -----------------------------------------------------------------------------------
def many_slots(
    n: int, n_tasks: int, n_tune: int, tmp: str, rows: set[str] = ROWS, slots: int = SLOTS
) -> None:
    head = [
        "tool",
        "trials",
        "ideal s",
        "run span s",
        "overhead",
        "per-trial overhead ms",
        "utilisation",
        "wall s (all)",
        "driver CPU s",
        "driver peak RSS MiB",
        "Ray processes peak RSS MiB",
    ]
    print(f"\n### 1. Many slots: trials x 1 s sleep at {slots} slots (ideal = trials x 1 s / {slots})")
    print(_row(head))
    print("|" + "---|" * len(head), flush=True)

    def show(name: str, k: int, r: dict[str, Any]) -> None:
        if "error" in r:
            print(_row(_fail(name, r, len(head))), flush=True)
            return
        ideal = k * 1.0 / slots
        cells = [
            name,
            f"{k:,}",
            f"{ideal:.1f}",
            f"{r['span']:.1f}",
            f"{r['span'] / ideal - 1:+.1%}",
            f"{(r['span'] - ideal) * slots / k * 1000:.1f}",
            f"{r['busy'] / (slots * r['span']):.3f}",
            f"{r['wall']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['rss_mib']:.0f}",
            f"{r['ray_rss_mib']:,.0f}",
        ]
        print(_row(cells), flush=True)

    def sweeper_row(name: str, k: int, address: str = "", nodes: list[int] = (), tasks: bool = False) -> None:
        flags = ["--tasks"] if tasks else []
        kw: dict[str, Any] = {"address": address} if address else {"cpus": slots}
        results = tempfile.mkdtemp(dir=tmp)
        r = measure(
            "sweeper",
            *flags,
            nodes=list(nodes),
            name="bench-slots",
            n=k,
            method="random",
            seconds=1.0,
            results=results,
            slots=slots,
            **kw,
        )
        show(name, k, r)

    if "local" in rows:
        sweeper_row("sweeper, local Ray, warm actors", n)
    if "tasks" in rows:
        sweeper_row("sweeper, local Ray, plain tasks", n_tasks, tasks=True)
    if "cluster" in rows:
        cluster_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
        begin = time.time()
        try:
            address, procs = start_nodes([slots - 2 * (slots // 3), slots // 3, slots // 3], cluster_tmp)
        except RuntimeError as exc:
            show("sweeper, 3-node cluster, warm actors", n, {"error": str(exc)})
        else:
            print(f"(3 nodes registered {time.time() - begin:.1f} s after the head's start)", flush=True)
            try:
                sweeper_row("sweeper, 3-node cluster, warm actors", n, address, [p.pid for p in procs])
            finally:
                stop_nodes(procs)
        shutil.rmtree(cluster_tmp, ignore_errors=True)
    if "tune" in rows:
        show(
            "Ray Tune, local Ray",
            n_tune,
            measure("tune", n=n_tune, seconds=1.0, cpus=slots, slots=slots, timeout=900),
        )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}", flush=True)


def adaptive(n: int, n_cma: int, marks: list[int], tmp: str, slots: int = SLOTS) -> None:
    """``marks``: trials told at which one ask is timed (in the sweeps, and plain Optuna beside ours)."""
    budget_ms = 1000 / slots  # 1 s runs on this many slots need an ask this often
    pending = 2 * slots  # the engine's asked-not-told cap (sweeper.engine.loop: two per slot)
    rows, curves = [], {}
    for method, k in (("tpe", n), ("cmaes", n_cma)):
        r = measure(
            "sweeper",
            name=f"bench-{method}",
            n=k,
            method=method,
            seconds=1.0,
            cpus=slots,
            slots=slots,
            results=tempfile.mkdtemp(dir=tmp),
        )
        if "error" in r:
            rows.append(_fail(method, r, 11))
            continue
        asks, steady = r["asks"], r.get("steady") or {}
        ask_cpu = sum(c for _, _, c, _ in asks)
        up_after = r.get("all_up_after")
        rows.append(
            [
                method,
                f"{k:,}",
                f"{k / slots:.1f}",
                f"{r['span']:.1f}",
                f"{up_after:.1f}" if up_after is not None else "never",
                f"{r['busy'] / (slots * r['span']):.3f}",
                f"{r['busy'] / r['up_slot_s']:.3f}" if r.get("up_slot_s") else "-",
                f"{steady['util']:.3f} over {steady['s']:.0f} s" if steady else "-",
                f"{1000 * ask_cpu / len(asks):.1f} / {1000 * sum(w for _, w, _, _ in asks) / len(asks):.1f}",
                f"{steady['ask_cpu_s'] / steady['s']:.2f}" if steady else "-",
                f"{r['cpu_s']:.1f}",
            ]
        )
        curves[method] = asks
    _table(
        f"2. Adaptive search, 1 s trials at {slots} slots: utilisation = busy slot-s / available slot-s"
        f" (an ask is needed every {budget_ms:.1f} ms; {os.cpu_count()} cores here)",
        [
            "method",
            "trials",
            "ideal s",
            "run span s",
            f"all {slots} actors up after s",
            f"utilisation ({slots} x span)",
            "utilisation (slots up)",
            "steady utilisation (all up, to last start)",
            "ask ms CPU / wall (mean)",
            "ask CPU s per s (steady)",
            "driver CPU s",
        ],
        rows,
    )
    plain = {}
    for mark in marks:
        plain[mark] = measure("asks", n=mark, pending=pending, rounds=20)
    head = [
        "trials told",
        f"plain Optuna TPE ask, CPU ms ({pending} running)",
        "sweeper's searcher, same state, CPU ms",
        *(f"{m} in the sweep, CPU / wall ms" for m in curves),
    ]
    table = []
    for mark in marks:
        a = plain[mark]
        side = (f"{1000 * a['plain']:.1f}", f"{1000 * a['ours']:.1f}") if "error" not in a else ("failed", "")
        cells: list[Any] = [f"{mark:,}", *side]
        for asks in curves.values():
            near = [(c, w) for told, w, c, _ in asks if abs(told - mark) <= max(10, mark // 20)]
            cpu, wall = (sum(x) / len(near) for x in zip(*near, strict=True)) if near else (0, 0)
            cells.append(f"{1000 * cpu:.1f} / {1000 * wall:.1f}" if near else "-")
        table.append(cells)
    _table(
        f"2b. One ask against trials told (median of 20 out of the sweep; mean near that count in it;"
        f" budget {budget_ms:.1f} ms; load {os.getloadavg()[0]:.1f})",
        head,
        table,
    )


def million(n: int, n_small: int, grid_side: int, tmp: str, n_kill: int = 0) -> None:
    """``n_kill``: trials of the sweep killed half-way and resumed (``n`` if 0)."""
    n_kill = n_kill or n
    rows = []
    small = measure(
        "sweeper",
        name="bench-rand-small",
        n=n_small,
        method="random",
        objective="quadratic",
        seconds=0,
        cpus=2,
        results=tempfile.mkdtemp(dir=tmp),
    )
    root = tempfile.mkdtemp(dir=tmp)
    big = measure(
        "sweeper",
        name="bench-rand",
        n=n,
        method="random",
        objective="quadratic",
        seconds=0,
        cpus=2,
        results=root,
    )
    for name, k, r in (("random, zero-cost", n_small, small), ("random, zero-cost", n, big)):
        if "error" in r:
            rows.append(_fail(name, r, 8))
            continue
        rows.append(
            [
                name,
                f"{k:,}",
                f"{r['wall']:.1f}",
                f"{r['span']:.1f}",
                f"{k / r['span']:,.0f}",
                f"{r['launch_peak_mib']:.0f}",
                f"{r['rss_mib']:.0f}",
                f"{r['launch_s']:.1f}",
            ]
        )
    _table(
        "3. A million trials (Ray, 2 CPUs)",
        [
            "sweep",
            "trials",
            "wall s (all)",
            "run span s",
            "trials/s",
            "driver peak RSS MiB (launch)",
            "(and the bench's read)",
            "launch() s",
        ],
        rows,
    )
    for name, r in ((f"{n_small:,}-trial", small), (f"{n:,}-trial", big)):
        done = r.get("compactions", {}).get("background")
        if done is not None:
            print(
                f"{name} sweep: {len(done)} background compactions of the trial table"
                f" ({', '.join(f'{s:.2f}' for s in done) or '-'} s), then the final one in close()"
                f" {r['compactions']['close_s']:.2f} s"
            )
    if "error" not in small and "error" not in big:
        grew = big["launch_peak_mib"] / small["launch_peak_mib"]
        print(f"\ndriver peak RSS through launch(): {n // n_small}x the trials -> {grew:.2f}x")
    load = measure("load", results=str(Path(root) / "bench-rand"))
    if "error" not in load:
        print(f"sweeper.load of the {load['rows']:,}-row table: {load['load_s']:.2f} s (fresh process)")
    # Killed half-way: what a reader sees meanwhile, then the resume's first new run.
    root = tempfile.mkdtemp(dir=tmp)
    sweep = {"name": "bench-kill", "n": n_kill, "method": "random", "objective": "quadratic", "seconds": 0}
    killed = measure("sweeper", **sweep, results=root, kill_at_rows=n_kill // 2)
    reads = [r for r in killed.get("reads", []) if "rows" in r]
    if reads:
        worst = max(reads, key=lambda r: r["read_s"])
        # the first reads also import pandas into this process, or find no part yet
        held = max((r for r in reads if r["rows"]), key=lambda r: r["read_s"], default=worst)
        print(
            f"table read while the sweep ran: {len(reads)} reads, rows {reads[0]['rows']:,}"
            f" .. {reads[-1]['rows']:,}, slowest {worst['read_s']:.2f} s ({worst['rows']:,} rows);"
            f" slowest with rows {held['read_s']:.2f} s ({held['rows']:,} rows, {held['files']} files);"
            f" most files in trials/ at a read {max(r['files'] for r in reads)};"
            f" compact files seen {len({c for r in reads for c in r['compact']})};"
            f" failed reads: {sum('error' in r for r in killed.get('reads', []))}"
        )
    if "killed_at" in killed:
        import sweeper

        at = len(sweeper.load(Path(root) / "bench-kill"))
        copies = {}  # the same killed folder, resumed on each backend
        for where in ("local", "joined"):
            copies[where] = tempfile.mkdtemp(dir=tmp)
            shutil.copytree(Path(root) / "bench-kill", Path(copies[where]) / "bench-kill")
        alone = measure("ray", cpus=2)
        if "error" not in alone:
            print(f"Ray alone, just before the resume: ray.init {alone['ray_init']:.2f} s")
        for backend, where in (("ray", root), ("local", copies["local"])):
            resumed = measure("sweeper", "--profile", **sweep, backend=backend, results=where)
            _show_resume(f"{backend} backend", resumed, at)
        _resume_joined(copies["joined"], sweep, at)
    else:
        print(f"kill run: {killed.get('error')}")
    grid = measure(
        "sweeper",
        "--profile",
        name="bench-grid",
        n=grid_side,
        method="grid",
        seconds=0,
        backend="local",
        results=tempfile.mkdtemp(dir=tmp),
    )
    if "error" in grid:
        print(f"grid failed: {grid['error']}")
    else:
        print(
            f"grid of {grid['rows']:,} points (local backend): first run"
            f" {grid['first_new_after_launch']:.3f} s after launch(), {grid['rows'] / grid['span']:,.0f}"
            f" trials/s, driver peak RSS {grid['rss_mib']:.0f} MiB"
        )


def _resume_joined(where: str, sweep: dict[str, Any], at: int) -> None:
    """The killed sweep resumed by a driver that joins a running Ray (``$RAY_ADDRESS``), as on a
    cluster, where Ray outlives the driver that was killed: the join is part of the launch."""
    cluster_tmp = tempfile.mkdtemp(prefix="r", dir="/tmp")  # Ray's socket paths must stay short
    try:
        address, procs = start_nodes([2], cluster_tmp)
    except RuntimeError as exc:
        print(f"resume after SIGKILL (joining a running Ray): its node failed to start: {exc}")
        return
    try:
        pids = [p.pid for p in procs]
        resumed = measure(
            "sweeper", "--profile", **sweep, nodes=pids, results=where, env={"RAY_ADDRESS": address}
        )
    finally:
        stop_nodes(procs)
        shutil.rmtree(cluster_tmp, ignore_errors=True)
    _show_resume("ray backend, joining a running 1-node Ray", resumed, at)


def _show_resume(how: str, resumed: dict[str, Any], at: int) -> None:
    if "error" in resumed:
        print(f"resume after SIGKILL ({how}) failed: {resumed['error']}")
        return
    first = resumed["first_new_after_launch"]
    when = "nothing left to run" if first is None else f"first new run {first:.2f} s after launch()"
    print(f"resume after SIGKILL at {at:,} rows ({how}): {when}; table {resumed['rows']:,} rows")
    print(_profile_lines(resumed["stderr"]))


def _profile_lines(stderr: str) -> str:
    lines = stderr.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("profile:")), None)
    return "\n".join(lines[start:]) if start is not None else "(no profile printed)"


def startup(tmp: str) -> None:
    alone = measure("ray", cpus=2)
    root = tempfile.mkdtemp(dir=tmp)
    first = measure(
        "sweeper",
        "--profile",
        name="bench-start",
        n=20,
        method="random",
        objective="quadratic",
        seconds=0,
        results=root,
    )
    again = measure(
        "sweeper",
        "--profile",
        name="bench-start",
        n=20,
        method="random",
        objective="quadratic",
        seconds=0,
        results=root,
    )
    if "error" in alone or "error" in first or "error" in again:
        print(f"\n### 4. start-up failed: {alone.get('error')} {first.get('error')} {again.get('error')}")
        return
    print("\n### 4. Start-up: 20 zero-cost trials on an embedded Ray (2 CPUs)")
    print(
        f"Ray alone: import ray {alone.get('import', 0.0):.2f} s, ray.init {alone['ray_init']:.2f} s, "
        f"first task {alone['first_task']:.2f} s, "
        f"ray.shutdown {alone['shutdown']:.2f} s"
    )
    print(
        f"sweeper launch(): first run {first['first_new_after_launch']:.2f} s after launch() "
        f"(target <= ray.init + 0.5 = {alone['ray_init'] + 0.5:.2f} s); launch() took"
        f" {first['launch_s']:.2f} s\n"
    )
    print("```\n" + _profile_lines(first["stderr"]) + "\n```")
    ray_started = "ray start" in _profile_lines(again["stderr"])
    print(
        f"\nno-op resume (everything done): launch() {again['launch_s']:.2f} s, whole process "
        f"{again['wall']:.2f} s, Ray started: {'yes' if ray_started else 'no'}"
    )
    traced = measure(
        "sweeper",
        "--profile",
        "--breakdown",
        name="bench-start",
        n=20,
        method="random",
        objective="quadratic",
        seconds=0,
        results=tempfile.mkdtemp(dir=tmp),
    )
    if "error" in traced:
        print(f"first-run breakdown failed: {traced['error']}")
        return
    print(f"\nThe same launch again, each step timed (load {os.getloadavg()[0]:.1f}):\n```")
    print(_breakdown(traced) + "\n" + _profile_lines(traced["stderr"]) + "\n```")


def _breakdown(r: dict[str, Any]) -> str:
    """The first run's path, in seconds since launch(): the driver's steps, the worker processes'
    starts, and the first actor's own events from Ray's timeline."""
    m, t0 = r["marks"], r["launched_at"]
    steps = [(m[k], k) for k in ("ray.init begins", "ray.init returns", "pool creates its actors") if k in m]
    steps += [(when, f"process {name} starts") for when, name in m.get("processes", []) if when >= t0]
    events = m.get("events", [])
    ready = [e for e in events if e["cat"].endswith("_Runner.ready")]
    if ready:  # the actor that came up first: its worker's events up to the end of its ready()
        first = min(ready, key=lambda e: e["ts"] + e["dur"])
        for e in sorted((e for e in events if e["tid"] == first["tid"]), key=lambda e: e["ts"]):
            if e["ts"] <= first["ts"] + first["dur"]:
                steps.append((e["ts"], f"first actor: {e['cat']} ({e['dur']:.3f} s)"))
    if "pool sees its first actor up" in m:
        steps.append((m["pool sees its first actor up"], "pool sees its first actor up"))
    steps.append((t0 + r["first_new_after_launch"], "first run starts"))
    total, own = m.get("driver CPU s in ray.init", (0.0, 0.0))
    return (
        "first run, step by step (s since launch):\n"
        + "\n".join(f"  {when - t0:8.3f}  {name}" for when, name in sorted(steps))
        + f"\ndriver CPU during ray.init: {total:.2f} s, of which ray.init's own thread {own:.2f} s"
    )


def ramp(k: int, seconds: float, tmp: str) -> None:
    """Ray's own floor for bringing up ``k`` slots, beside sweeper's, and what Ray's knobs change."""
    knobs = {
        "": {},
        f"startup concurrency {k}": {"RAY_worker_maximum_startup_concurrency": str(k)},
        "no prestart": {"RAY_prestart_worker_first_driver": "0"},
    }
    cases = [
        ("Ray alone: bare actors", "actors", ""),
        ("Ray alone: bare tasks", "tasks", ""),
        ("sweeper: warm actors", "sweeper", ""),
        *((f"Ray alone: bare actors, {knob}", "actors", knob) for knob in list(knobs)[1:]),
        (f"sweeper: warm actors, startup concurrency {k}", "sweeper", f"startup concurrency {k}"),
    ]
    rows = []
    for name, method, knob in cases:
        r = measure(
            "ramp", method=method, cpus=k, seconds=seconds, results=tempfile.mkdtemp(dir=tmp), env=knobs[knob]
        )
        if "error" in r:
            rows.append(_fail(name, r, 7))
            continue
        rows.append(
            [
                name,
                f"{r['ray_init']:.1f}",
                f"{r['first']:.1f}",
                f"{r['half']:.1f}",
                f"{r['last']:.1f}",
                f"{r['peak']} of {k}",
                f"{os.getloadavg()[0]:.1f}",
            ]
        )
    _table(
        f"6. Ramp: {k} runs of {seconds:g} s sleep on a fresh local Ray (num_cpus={k}), seconds from"
        " ray.init's return until the first, the middle and the last has started",
        ["what", "ray.init s", "first s", "half s", "last s", "running at once (peak)", "load"],
        rows,
    )


def cpu_per_run(n: int, seconds: float, slots: int, before: str, tmp: str) -> None:
    parts = ["driver", "workers", "raylet", "gcs", "daemons"]
    head = [
        "what",
        "runs (window)",
        "runs/s (ideal)",
        *(f"{p} ms/run" for p in parts),
        "total ms/run",
        "actors up",
        "actor ramp s",
        "load",
    ]
    rows = []

    def row(name: str, r: dict[str, Any]) -> None:
        if "error" in r:
            rows.append(_fail(name, r, len(head)))
            return
        ms = r["ms_per_run"]
        ramp = r.get("ramp_s")
        rows.append(
            [
                name,
                f"{r['window_runs']:,}",
                f"{r['window_runs'] / r['window_s']:.1f} ({slots / seconds:.0f})",
                *(f"{ms.get(p, 0.0):.2f}" for p in parts),
                f"{sum(ms.values()):.2f}",
                r["actors_up"] or "-",
                f"{ramp:.0f}" if ramp is not None else "-",
                f"{os.getloadavg()[0]:.1f}",
            ]
        )

    row("Ray alone: actors fed the sleeps", measure("cpu", method="ray", n=n, seconds=seconds, cpus=slots))
    idle = measure("cpu", method="ray", n=0, cpus=slots)
    checkouts = [("sweeper (this checkout)", REPO)]
    if before:
        checkouts.append((f"sweeper ({before})", Path(before)))
    for name, src in checkouts:
        r = measure("cpu", n=n, seconds=seconds, cpus=slots, results=tempfile.mkdtemp(dir=tmp), src=src)
        row(name, r)
    _table(
        f"5. CPU per run: {n:,} x {seconds:g} s sleeps at {slots} slots, local Ray (steady part: every"
        " actor up)",
        head,
        rows,
    )
    if "error" not in idle:
        ms = idle["idle_ms_per_s"]
        print(
            f"Ray alone, {slots} idle actors (CPU ms per second, by part): "
            + ", ".join(f"{p} {ms.get(p, 0.0):.1f}" for p in parts)
            + f"; per actor {ms.get('workers', 0.0) / slots:.2f} ms/s; load {os.getloadavg()[0]:.1f}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, to check it runs")
    p.add_argument("--only", default="1,2,3,4,5,6", help="workloads to run, e.g. 1,4")
    p.add_argument("--trials", type=int, default=0, help="trials of workloads 1 and 2 (their full size if 0)")
    p.add_argument("--kill-trials", type=int, default=0, help="workload 3's killed sweep (full size if 0)")
    p.add_argument("--rows", default=",".join(sorted(ROWS)), help="workload 1's rows, e.g. cluster,tune")
    p.add_argument("--before", default="", help="workload 5 also on this checkout (before/after)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    for flag in ("--name", "--method", "--objective", "--results", "--address", "--backend"):
        p.add_argument(
            flag, help=argparse.SUPPRESS, default={"--objective": "nap", "--backend": "ray"}.get(flag, "")
        )
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--cpus", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--pending", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--slots", type=int, default=SLOTS, help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=1.0, help=argparse.SUPPRESS)
    p.add_argument("--tasks", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--profile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "nodes":
        child_nodes(args)
        return
    if args.child:
        child(args)
        return
    # `timeout` ends a bench with SIGTERM: exit through the finally blocks, so the `ray start`
    # nodes it started (each in its own session) are stopped instead of left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    only = set(args.only.split(","))
    q = args.quick
    slots = 16 if q else SLOTS  # 64 actors take ~50 s to start here: a quick check uses fewer
    print(
        f"sweeper scale benchmark{' (--quick)' if q else ''}: {os.cpu_count()} cores here; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    with tempfile.TemporaryDirectory(prefix="sweeper-scale-") as tmp:
        if "1" in only:
            n = args.trials or (640 if q else 10_000)
            many_slots(n, n if q else n // 2, 64 if q else 256, tmp, set(args.rows.split(",")), slots)
        if "2" in only:
            n = args.trials or (320 if q else 5000)
            marks = [m for m in (100, 500, 1000, 2000, 5000) if m <= max(n, 1000)]
            adaptive(n, n if q else min(n, 2000), marks, tmp, slots)
        if "3" in only:
            n = 20_000 if q else 1_000_000
            # the killed sweep must outlast the reader's 2 s polls: 20,000 zero-cost trials end in ~3 s
            kill = args.kill_trials or (200_000 if q else 0)
            million(n, 2_000 if q else 10_000, 20 if q else 100, tmp, kill)
        if "4" in only:
            startup(tmp)
        if "5" in only:
            cpu_per_run(1_500 if q else 6_000, 0.2 if q else 1.0, slots, args.before, tmp)
        if "6" in only:
            ramp(slots, 10.0 if q else 30.0, tmp)


if __name__ == "__main__":
    main()
