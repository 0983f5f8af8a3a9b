"""Warm actors: used when every run asks for the same resources and none can time out; a run that
kills its process takes its actor with it, is retried, and the sweep goes on with a new actor."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.backends.base import NotStarted
from sweeper.backends.ray import RayBackend
from sweeper.backends.ray_pool import WarmPool
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


ONE_CPU = {"num_cpus": 1, "max_retries": 0}


def test_actors_that_come_up_one_after_another_are_all_kept(ray_session: Any) -> None:
    """Ray starts a node's workers a few at a time (64 took 90 s on 2 loaded cores): an actor that
    comes up long after its own start, while the pool still grows, is kept (this let go of 36 of 64)."""
    # Not imported here: the import itself takes the lock. The second actor comes up 8 s after the
    # first (STAGGER_S), 13 s after its own start (FIRST_S + STAGGER_S).
    start_s = 12.0  # more than the stagger between the two, less than the second's start-up
    ref = RunContext("slow_start_objectives:value", str(HERE), ("value",))
    pool = WarmPool(ONE_CPU, ref, 2, start_s=start_s)
    try:
        for _ in range(240):
            pool.poll()
            if not pool._starting:
                break
            time.sleep(0.25)
        assert pool._overdue == 0 and len(pool._load) == 2  # both came up, none was let go
        handles = [pool.submit([Run(k, 0, 7, {"x": float(k)})], 2) for k in range(2)]
        assert len({pool._owner[h] for h in handles}) == 2  # one batch on each actor
        done = dict(zip(handles, ray_session.get(handles), strict=True))
        assert sorted(o.metrics["value"] for h in handles for o in done[h]) == [0.0, 1.0]
    finally:
        pool.close()


def test_a_pool_that_stops_growing_lets_go_of_the_actors_with_no_room(ray_session: Any) -> None:
    """Three actors of 1 CPU on a 2-CPU Ray: the third is never placed, so once no actor has come up
    for start_s it is let go, and the batch queued on it is reported as never started."""
    spec = _spec(["ok"])
    pool = WarmPool(ONE_CPU, RunContext(spec.objective, spec.root, ("value",)), 3, start_s=15.0)
    try:
        for _ in range(240):  # the two that fit come up
            pool.poll()
            if len(pool._starting) == 1:
                break
            time.sleep(0.25)
        handles = [pool.submit([Run(k, 0, 7, {"mode": "ok"})], 3) for k in range(3)]
        stuck = handles[2]  # the least loaded actor is the one still starting
        for _ in range(240):
            pool.poll()
            if pool._overdue:
                break
            time.sleep(0.25)
        assert pool._overdue == 1 and len(pool._load) == 2
        for handle in handles[:2]:
            assert [o.status for o in pool.done(handle, ray_session.get(handle))] == ["complete"]
        try:
            result: Any = ray_session.get(stuck, timeout=60)
        except Exception as exc:  # the actor let go never ran it
            result = exc
        assert isinstance(pool.done(stuck, result), NotStarted)
    finally:
        pool.close()


def _wait(backend: RayBackend, handle: Any) -> list[tuple[Any, Any]]:
    for _ in range(120):
        done = backend.wait([handle], timeout=1.0)
        if done:
            return done
    raise AssertionError("the batch never finished")
