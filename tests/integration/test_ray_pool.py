"""Warm actors: used when every run asks for the same resources and none can time out; a run that
kills its process takes its actor with it, is retried, and the sweep goes on with a new actor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.backends.ray import RayBackend
from sweeper.run.types import Run, RunContext
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent
pytestmark = pytest.mark.timeout(240)


def _spec(modes: list[str], **extra: Any) -> sweeper.Experiment:
    return load_spec(
        {
            "experiment": "pool",
            "objective": "resume_objectives:misbehave",
            "metrics": [{"value": "maximize"}],
            "variables": {"mode": {"choice": modes}},
            "search": {"method": "grid"},
            **extra,
        },
        root=HERE,
    )


def test_actors_only_where_a_run_can_be_stopped_alone(ray_session: Any) -> None:
    def pool(spec: sweeper.Experiment) -> bool:
        backend = RayBackend(spec, RunContext(spec.objective, spec.root, ("value",)))
        try:
            return backend._pool is not None
        finally:
            backend.close()

    assert pool(_spec(["ok"]))
    assert not pool(_spec(["ok"], timeout="5s"))  # a timed-out run is killed alone: tasks
    assert not pool(_spec(["ok"], resources={"cpus": {"when": {"mode": "ok"}, "value": 0.5}}))


def test_a_crash_takes_only_its_actor(tmp_path: Path, ray_session: Any) -> None:
    sweep = sweeper.launch(_spec(["ok", "exit", "segv"], replicates=3), results=tmp_path, backend="ray")
    table = sweep.table
    assert len(table) == 9 and not table.duplicated(["trial", "replicate"]).any()
    status = table.groupby("mode")["status"].agg(set).to_dict()
    assert status == {"ok": {"complete"}, "exit": {"failed"}, "segv": {"failed"}}
    crashed = table[table["mode"] != "ok"]
    assert crashed["error"].str.contains("the process running this run died 3 times").all()
    assert (crashed["attempt"] == 3).all()
    # A run queued behind a crash on the same actor never started: it is not charged an attempt,
    # and an innocent run is never failed for its neighbour's crash.
    assert (table.loc[table["mode"] == "ok", "attempt"] <= 2).all()


def test_after_a_lost_actor_batches_run_as_plain_tasks(ray_session: Any) -> None:
    """Which batch killed an actor is a guess (a finished batch's reply can die with it), so after
    the first loss the pool stops using actors: a crash in a plain task is the crashing run's own."""
    spec = _spec(["ok", "exit"])
    backend = RayBackend(spec, RunContext(spec.objective, spec.root, ("value",)))
    try:
        pool = backend._pool
        assert pool is not None
        crash = backend.submit([Run(1, 0, 7, {"mode": "exit"})])
        ((_, lost),) = _wait(backend, crash)
        assert isinstance(lost, BaseException)
        after = backend.submit([Run(0, 0, 7, {"mode": "ok"})])
        assert pool.draining and not pool.owns(after)  # a plain task, not an actor's batch
        ((_, outcomes),) = _wait(backend, after)
        assert [o.status for o in outcomes] == ["complete"]
        assert not pool.usable  # every idle actor was let go, freeing its CPU for the tasks
    finally:
        backend.close()


def _wait(backend: RayBackend, handle: Any) -> list[tuple[Any, Any]]:
    for _ in range(120):
        done = backend.wait([handle], timeout=1.0)
        if done:
            return done
    raise AssertionError("the batch never finished")
