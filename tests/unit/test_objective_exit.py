"""A SystemExit in a run: the objective's own is a failed run; the worker's SIGTERM handler's is not."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from sweeper.run.objective import execute
from sweeper.run.types import Run, RunContext

ROOT = str(Path(__file__).parents[2])


def exits(x: float) -> float:
    sys.exit(3)


def terminated(x: float) -> float:
    os.kill(os.getpid(), signal.SIGTERM)  # what Slurm's preemption does to every process of a job
    signal.pause()  # the handler raises before this returns
    return x


def _worker_handler(signum: int, frame: object) -> None:
    raise SystemExit(1)  # as a Ray worker's SIGTERM handler does


def _ref(name: str) -> RunContext:
    return RunContext(f"tests.unit.test_objective_exit:{name}", ROOT, ("loss",))


def test_the_objectives_own_sys_exit_is_a_failed_run() -> None:
    [out] = execute(_ref("exits"), [Run(0, 0, 1, {"x": 1.0})])
    assert out.status == "failed"
    assert "called sys.exit(3)" in (out.error or "")


def test_the_workers_sigterm_handler_stops_the_worker_and_is_not_a_failed_run() -> None:
    before = signal.signal(signal.SIGTERM, _worker_handler)
    try:
        with pytest.raises(SystemExit):  # passed on: the worker is being stopped, the run is lost
            execute(_ref("terminated"), [Run(0, 0, 1, {"x": 1.0})])
        # the same handler's exit, raised outside it, is the objective's: a failed run
        [out] = execute(_ref("exits"), [Run(0, 0, 1, {"x": 1.0})])
        assert out.status == "failed"
    finally:
        signal.signal(signal.SIGTERM, before)
