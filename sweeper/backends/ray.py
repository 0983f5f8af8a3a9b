"""Runs as Ray tasks: embedded ``ray.init()`` by default, or an existing cluster's address.

Each task executes a batch of runs with the experiment's per-run resources (a batch holds several
runs only when runs are tiny, so resources per task stay those of one run). Ray retries nothing
itself: the engine resubmits runs lost with a worker or node and counts the attempt.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.objectives import ObjectiveRef, Outcome, Run, execute

if TYPE_CHECKING:
    from sweeper.spec import Experiment


def _run_batch(ref: ObjectiveRef, runs: Sequence[Run]) -> list[Outcome]:
    import ray

    node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}"
    return execute(ref, runs, node)


class RayBackend:
    def __init__(self, spec: Experiment, ref: ObjectiveRef, *, address: str | None = None):
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self._owns = False
        if not ray.is_initialized():
            # address="local" starts a fresh private Ray even when a `ray start` cluster runs here.
            kwargs: dict[str, Any] = {"address": "local", "include_dashboard": False,
                                      "log_to_driver": False, "logging_level": "error"}
            if address:
                kwargs = {"address": address, "log_to_driver": False, "logging_level": "error"}
            # The package running this driver must be importable by workers on this machine.
            ray.init(**kwargs, runtime_env=_runtime_env())
            self._owns = True
        self.ref = ref
        res = spec.resources
        options: dict[str, Any] = {"num_cpus": res.cpus, "num_gpus": res.gpus, "max_retries": 0}
        if res.memory:
            options["memory"] = res.memory
        if res.custom:
            options["resources"] = dict(res.custom)
        self._remote = ray.remote(_run_batch).options(**options)
        self.slots = _slots(ray.cluster_resources(), spec)

    def submit(self, runs: Sequence[Run]) -> Any:
        return self._remote.remote(self.ref, list(runs))

    def wait(self, handles: Collection[Any], timeout: float | None
             ) -> list[tuple[Any, list[Outcome] | BaseException]]:
        import ray

        refs = list(handles)
        if not refs:
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout, fetch_local=True)
        if ready:  # take every other one that is done too, without waiting again
            more, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list({r: None for r in [*ready, *more]})
        out: list[tuple[Any, list[Outcome] | BaseException]] = []
        for ref in ready:
            try:
                out.append((ref, ray.get(ref)))
            except Exception as exc:  # worker or node died, or the task was cancelled
                out.append((ref, exc))
        return out

    def cancel(self, handle: Any) -> None:
        import ray

        ray.cancel(handle, force=True)

    def close(self) -> None:
        import ray

        if self._owns:
            ray.shutdown()


def _runtime_env() -> dict[str, Any] | None:
    """Make workers find this sweeper even when it is not installed (e.g. run from a checkout)."""
    import sweeper

    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(sweeper.__file__)))
    path = os.environ.get("PYTHONPATH", "")
    if pkg_root in path.split(os.pathsep):
        return None
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (pkg_root, path) if p)}}


def _slots(cluster: dict[str, float], spec: Experiment) -> int:
    """How many runs fit on the cluster at once with each run's resources."""
    res = spec.resources
    limits = []
    wanted = {"CPU": res.cpus, "GPU": res.gpus, **dict(res.custom)}
    if res.memory:
        wanted["memory"] = res.memory
    for name, amount in wanted.items():
        if amount <= 0:
            continue
        have = cluster.get(name, 0.0)
        if have < amount:
            raise SweeperError(
                f"resources: each run asks for {amount:g} {name} but the Ray cluster has {have:g}"
                f"\n  fix: lower resources.{name.lower() if name in ('CPU', 'GPU') else name} in the sweep"
                " file, or run on a cluster that has it (--address)")
        limits.append(int(have // amount + 1e-9))
    return max(1, min(limits)) if limits else max(1, int(cluster.get("CPU", 1)))
