"""The function every Ray worker runs for a batch, shared by plain tasks (:mod:`sweeper.backends.ray`)
and warm actors (:mod:`sweeper.backends.ray_pool`)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

from sweeper.results.store import environ
from sweeper.run.objective import execute
from sweeper.run.types import Outcome, Run, RunContext

_NODE: list[str] = []  # this worker's node name, found once (a worker process never moves)


def run_batch(ref: RunContext, runs: Sequence[Run]) -> list[Outcome]:
    import ray

    if not _NODE:
        _NODE.append(f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:8]}")
    node = _NODE[0]
    if ray.get_gpu_ids():  # Ray has set CUDA_VISIBLE_DEVICES to this run's GPUs
        return execute(ref, runs, node)
    # Ray leaves the variable alone for a task without GPUs, so it would see every GPU of the node.
    with environ({"CUDA_VISIBLE_DEVICES": ""}):
        return execute(ref, runs, node)
