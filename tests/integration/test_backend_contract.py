"""The Backend contract (sweeper.backends.base.Backend's docstring), one suite for every backend.

Parametrized over the fake in-process backend, ``local``, and ``ray`` both with warm actors and with
plain tasks, on real runs of tests/objectives.py (as optuna's storage and sampler suites do). A new
backend joins by adding one entry to BACKENDS below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest

from sweeper import load_spec
from sweeper.backends.base import Backend, Handle
from sweeper.backends.testing import FakeBackend
from sweeper.run.types import Outcome, Run, RunContext
from tests.conftest import REPO, sweep_spec
from tests.objectives import quadratic

SPEC = load_spec(sweep_spec())


def _ray(actors: bool) -> Callable[[RunContext], Backend]:
    def make(ref: RunContext) -> Backend:
        from sweeper.backends.ray import RayBackend

        return RayBackend(SPEC, ref, actors=actors)

    return make


def _local(ref: RunContext) -> Backend:
    from sweeper.backends.local import LocalBackend

    return LocalBackend(ref)


BACKENDS: dict[str, Callable[[RunContext], Backend]] = {
    "fake": lambda ref: FakeBackend(ref, slots=3),
    "local": _local,
    "ray-actors": _ray(True),
    "ray-tasks": _ray(False),
}
# Backends whose runs live in another process, so a run can kill its worker without the driver.
ISOLATED = {"ray-actors", "ray-tasks"}


@pytest.fixture(params=list(BACKENDS))
def make(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Backend]]:
    if request.param.startswith("ray"):
        request.getfixturevalue("ray_session")
    made: list[Backend] = []

    def build(objective: str) -> Backend:
        backend = BACKENDS[request.param](RunContext(objective, str(REPO / "tests"), ("loss", "x_abs")))
        made.append(backend)
        return backend

    build.name = request.param  # type: ignore[attr-defined]
    yield build
    for backend in made:
        backend.close()


def runs(trial: int, n: int) -> list[Run]:
    return [Run(trial, r, 100 + r, {"x": 0.25 * trial, "y": r, "kind": "a"}) for r in range(n)]


def wait_all(backend: Backend, handles: list[Handle]) -> dict[Handle, list[Outcome] | BaseException]:
    """Wait until every handle is reported; fail on a handle reported twice or never asked for."""
    out: dict[Handle, list[Outcome] | BaseException] = {}
    for _ in range(600):  # each wait blocks up to 1 s: a backend that never answers fails here
        left = [h for h in handles if h not in out]
        if not left:
            return out
        for handle, result in backend.wait(left, 1.0):
            assert handle in left, f"{handle} reported twice or never submitted"
            out[handle] = result
    raise AssertionError(f"{len(left)} batches never came back")


def test_slots_and_depth_are_positive(make):
    backend = make("objectives:quadratic")
    assert backend.slots >= 1 and backend.depth >= 1


def test_each_batch_comes_back_once_with_one_outcome_per_run(make):
    backend = make("objectives:quadratic")
    batches = [runs(0, 2), runs(1, 1), runs(2, 3)]
    handles = [backend.submit(b) for b in batches]
    assert len(set(handles)) == 3
    results = wait_all(backend, handles)
    for batch, handle in zip(batches, handles, strict=True):
        outcomes = results[handle]
        assert not isinstance(outcomes, BaseException), outcomes
        assert sorted((o.trial, o.replicate, o.attempt) for o in outcomes) == [
            (r.trial, r.replicate, r.attempt) for r in batch
        ]
        for o, r in zip(sorted(outcomes, key=lambda o: o.replicate), batch, strict=True):
            assert o.status == "complete" and o.error is None and not o.fatal
            assert math.isclose(o.metrics["loss"], quadratic(seed=r.seed, **r.params)["loss"])
            assert o.ended >= o.started and o.node


def test_an_objective_that_raises_is_a_failed_outcome_not_an_exception(make):
    backend = make("objectives:flaky")
    handle = backend.submit(runs(0, 4))  # y=3 raises
    outcomes = wait_all(backend, [handle])[handle]
    assert not isinstance(outcomes, BaseException), outcomes
    by_rep = {o.replicate: o for o in outcomes}
    assert by_rep[3].status == "failed" and "y=3 is broken" in (by_rep[3].error or "")
    assert {by_rep[r].status for r in range(3)} == {"complete"}


def test_wait_on_nothing_returns_nothing(make):
    backend = make("objectives:quadratic")
    assert backend.wait([], 0) == []


def test_cancel_is_harmless_and_the_backend_goes_on(make):
    # The doomed batch stalls, so it is cancelled while it runs. (A force-cancel that races a plain
    # Ray task's own completion can trip a RAY_CHECK in Ray 2.60's task manager and end the driver.)
    backend = make("objectives:stalls_when_told")
    first = backend.submit(runs(0, 1))
    wait_all(backend, [first])
    backend.cancel(first)  # already reported
    isolated = make.name in ISOLATED  # type: ignore[attr-defined]
    # (the local backend runs a batch inside submit: only a worker elsewhere can stall while we cancel)
    doomed = backend.submit([Run(1, 0, 100, {"x": 0.25, "y": 0, "kind": "stall" if isolated else "a"})])
    if isolated:
        backend.wait([doomed], 1.0)  # let it start in its worker
    backend.cancel(doomed)  # the engine forgets it; the backend keeps working
    backend.cancel(doomed)
    after = backend.submit(runs(2, 2))
    outcomes = wait_all(backend, [after])[after]
    assert not isinstance(outcomes, BaseException) and len(outcomes) == 2


def test_a_batch_lost_with_its_worker_is_an_exception(make):
    if make.name not in ISOLATED:
        if make.name != "fake":
            pytest.skip(f"{make.name} runs in the driver's process: a crash there takes the driver")
        backend = make("objectives:quadratic")
        backend.lose = lambda batch, n: RuntimeError("worker died") if n == 0 else None  # type: ignore[attr-defined]
    else:
        backend = make("objectives:crash")
    handle = backend.submit(runs(0, 2))
    result = wait_all(backend, [handle])[handle]
    assert isinstance(result, BaseException), result
