"""The engine on the fake backend: retries, NotStarted, timeouts, max_failures, budget, Ctrl-C and
batching, each in milliseconds and without Ray (the fake's clock stands in for time)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from sweeper import load_spec
from sweeper.backends.base import NotStarted
from sweeper.backends.testing import FakeBackend, complete, failed
from sweeper.engine import loop
from sweeper.engine.loop import MAX_ATTEMPTS, Engine
from sweeper.engine.signals import stop_on_interrupt
from sweeper.errors import ObjectiveError
from sweeper.results.reading import read_folder
from sweeper.results.table import TableWriter, trial_schema
from sweeper.run.types import RunContext
from sweeper.search.searcher import Searcher
from tests.conftest import REPO, sweep_spec


def ref(objective: str = "objectives:quadratic") -> RunContext:
    return RunContext(objective, str(REPO / "tests"), ("loss", "x_abs"))


class Sweep:
    """One engine over a FakeBackend, writing a real trial table under tmp_path."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend, **spec: Any):
        self.spec = load_spec(sweep_spec(**spec))
        self.backend = backend
        monkeypatch.setattr(loop, "time", backend.clock)  # deadlines and stamps on the fake clock
        self.folder = tmp_path / "trials"
        self.writer = TableWriter(self.folder, trial_schema(self.spec))
        self.engine = Engine(self.spec, Searcher(self.spec), backend, self.writer)

    def run(self) -> Any:
        try:
            return self.engine.run()
        finally:
            self.writer.close()

    def table(self) -> Any:
        return read_folder(self.folder).to_pandas().sort_values(["trial", "replicate"])


def test_budget_and_replicates_each_run_once(tmp_path, monkeypatch):
    sweep = Sweep(tmp_path, monkeypatch, FakeBackend(ref(), slots=3))
    stats = sweep.run()
    table = sweep.table()
    assert stats.trials_done == 6 and stats.runs_done == 12 and stats.counts == {"complete": 12}
    assert not table.duplicated(["trial", "replicate"]).any()
    assert sorted(table.trial.unique()) == list(range(6))
    assert table.groupby("replicate").seed.nunique().tolist() == [1, 1]  # common random numbers
    assert sweep.backend.closed is False  # closing is the caller's (api) business


def test_a_lost_batch_is_retried_and_counts_an_attempt(tmp_path, monkeypatch):
    backend = FakeBackend(ref(), lose=lambda runs, n: RuntimeError("worker died") if n == 0 else None)
    sweep = Sweep(tmp_path, monkeypatch, backend)
    sweep.run()
    first = backend.submitted[0][0]
    table = sweep.table()
    row = table[(table.trial == first.trial) & (table.replicate == first.replicate)].iloc[0]
    assert row.status == "complete" and row.attempt == 2
    assert (table.drop(row.name).attempt == 1).all()


def test_a_run_lost_every_time_fails_after_max_attempts(tmp_path, monkeypatch):
    def lose(runs, n):
        return RuntimeError("segfault") if any(r.trial == 0 for r in runs) else None

    sweep = Sweep(tmp_path, monkeypatch, FakeBackend(ref(), lose=lose))
    sweep.run()
    table = sweep.table()
    zero = table[table.trial == 0]
    assert (zero.status == "failed").all() and (zero.attempt == MAX_ATTEMPTS).all()
    assert zero.error.str.contains(f"died {MAX_ATTEMPTS} times").all()
    assert (table[table.trial != 0].status == "complete").all()


def test_not_started_batches_run_again_without_an_attempt(tmp_path, monkeypatch):
    backend = FakeBackend(ref(), lose=lambda runs, n: NotStarted("queued behind a crash") if n < 3 else None)
    sweep = Sweep(tmp_path, monkeypatch, backend)
    sweep.run()
    table = sweep.table()
    assert len(table) == 12 and (table.attempt == 1).all() and (table.status == "complete").all()
    lost = [(r.trial, r.replicate) for batch in backend.submitted[:3] for r in batch]
    again = [(r.trial, r.replicate) for batch in backend.submitted[3:] for r in batch]
    assert set(lost) <= set(again)


def test_a_run_its_worker_cannot_stop_is_killed_at_the_backstop(tmp_path, monkeypatch):
    backend = FakeBackend(ref(), hang=lambda runs: any(r.trial == 1 for r in runs))
    sweep = Sweep(tmp_path, monkeypatch, backend, timeout=2)
    start = backend.clock.now
    sweep.run()
    table = sweep.table()
    stuck = table[table.trial == 1]
    assert (stuck.status == "timeout").all() and stuck.error.str.contains("did not stop").all()
    assert {(r.trial, r.replicate) for b in backend.cancelled for r in b} == {(1, 0), (1, 1)}
    assert (table[table.trial != 1].status == "complete").all()
    assert backend.clock.now - start >= loop.backstop(2.0)  # waited on the clock, not for real
    assert all(len(b) == 1 for b in backend.submitted)  # a timeout kills a run alone: no batching


def test_max_failures_stops_launching(tmp_path, monkeypatch):
    spec = {"search": {"method": "grid"}, "variables": {"y": {"int": [0, 4]}, "x": 1.0, "kind": "a"}}
    sweep = Sweep(
        tmp_path, monkeypatch, FakeBackend(ref("objectives:flaky"), slots=1), **spec, max_failures=1
    )
    sweep.run()
    assert sweep.engine.halted is not None and "max_failures: 1" in sweep.engine.halted
    table = sweep.table()
    assert table.trial.max() == 3 and (table[table.trial == 3].status == "failed").all()
    assert sweep.engine.stats.stopping.startswith("too many failures")


def test_a_fatal_objective_stops_the_sweep_with_its_error(tmp_path, monkeypatch):
    sweep = Sweep(tmp_path, monkeypatch, FakeBackend(ref("objectives:returns_text")))
    with pytest.raises(ObjectiveError, match="not a number"):
        sweep.run()


def test_first_ctrl_c_lets_running_runs_finish_second_cancels(tmp_path, monkeypatch):
    signals: list[int] = []
    # trial 1 is still running at the first Ctrl-C: it must land all the same
    backend = FakeBackend(ref(), slots=4, depth=1, hang=lambda runs: not signals and runs[0].trial == 1)
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "random", "trials": 50, "seed": 0})

    def progress(stats):
        if not signals:
            signals.append(len(backend.submitted))
            os.kill(os.getpid(), signal.SIGINT)

    sweep.engine.on_progress = progress
    with stop_on_interrupt(sweep.engine) as count:
        stats = sweep.run()
    assert count == [1] and len(backend.submitted) == signals[0] == 4 and backend.cancelled == []
    assert stats.runs_done == 4 and set(sweep.table().trial) == {0, 1}

    backend = FakeBackend(ref(), slots=4, depth=1, hang=lambda runs: runs[0].trial == 1)
    sweep = Sweep(tmp_path / "b", monkeypatch, backend, search={"method": "random", "trials": 50, "seed": 0})

    def twice(stats):
        if stats.runs_done and count[0] < 2:
            os.kill(os.getpid(), signal.SIGINT)

    sweep.engine.on_progress = twice
    with stop_on_interrupt(sweep.engine) as count:
        stats = sweep.run()
    assert count == [2] and stats.stopping == "cancelled 2 runs in flight"
    assert {(r.trial, r.replicate) for b in backend.cancelled for r in b} == {(1, 0), (1, 1)}
    assert stats.runs_done == len(sweep.table()) == 2


def test_short_runs_are_batched_and_every_slot_kept_queued(tmp_path, monkeypatch):
    backend = FakeBackend(ref(), slots=2, depth=3, run_s=0.001)
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "random", "trials": 400, "seed": 0})
    sweep.run()
    sizes = [len(b) for b in backend.submitted]
    assert sizes[0] == 1 and max(sizes) > 1  # sized from the measured run time after the first
    assert max(sizes) <= loop.MAX_BATCH and sum(sizes) == 800
    assert backend.peak == 3 * 2  # depth batches queued per slot
    assert len(sweep.table()) == 800


def test_adaptive_search_sends_one_trial_a_batch(tmp_path, monkeypatch):
    backend = FakeBackend(ref(), slots=2, run_s=0.001)
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "tpe", "trials": 12, "seed": 0})
    sweep.run()
    later = backend.submitted[1:]
    assert all(len({r.trial for r in b}) == 1 for b in later)
    assert max(len(b) for b in later) == 2  # the trial's replicates go together


def test_outcomes_can_be_scripted_without_an_objective(tmp_path, monkeypatch):
    backend = FakeBackend(outcome=lambda run: complete(run, float(run.trial)))
    sweep = Sweep(tmp_path, monkeypatch, backend)
    stats = sweep.run()
    assert stats.best_trial == 0 and stats.best_value == 0.0


def test_running_and_queued_are_counted_apart(tmp_path, monkeypatch):
    """Runs handed to the backend beyond one per slot wait: they are queued, not running."""
    start = 1_000_000.0  # the fake clock's start: batches led by an odd trial hang for 2 s of it
    backend = FakeBackend(
        ref(),
        slots=2,
        depth=3,
        run_s=0.001,
        hang=lambda runs: runs[0].trial % 2 == 1 and backend.clock.now < start + 2,
    )
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "random", "trials": 200, "seed": 0})
    seen: list[tuple[int, int, int]] = []
    sweep.engine.on_progress = lambda s: seen.append(
        (s.running, s.queued, sum(len(r) for r in backend._running.values()))
    )
    sweep.run()
    assert all(running + queued == inflight for running, queued, inflight in seen[:-1])
    assert max(running for running, _, _ in seen) == 2  # never more than the slots
    assert max(queued for _, queued, _ in seen) > 2
    assert seen[-1][:2] == (0, 0)


def test_first_runs_failing_alike_stop_the_sweep(tmp_path, monkeypatch):
    backend = FakeBackend(
        slots=1, outcome=lambda run: failed(run, "Traceback ...\n  File x\nNameError: nmpy")
    )
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "random", "trials": 50, "seed": 0})
    stats = sweep.run()
    assert sweep.engine.halted is not None and sweep.engine.halted.endswith("NameError: nmpy")
    assert "the first 5 runs (of 3 trials)" in sweep.engine.halted
    assert stats.runs_done == loop.SAME_ERROR_RUNS and stats.first_error is not None
    assert stats.first_error[:2] == (0, 0) and stats.first_error[2].endswith("NameError: nmpy")


@pytest.mark.parametrize("case", ["each trial its own error", "one run worked first"])
def test_failures_that_are_not_one_bug_use_the_budget(tmp_path, monkeypatch, case):
    def outcome(run):
        if case == "one run worked first" and run.trial == 0:
            return complete(run, 1.0)
        return failed(
            run, f"ValueError: trial {run.trial}" if case.startswith("each") else "ValueError: same"
        )

    backend = FakeBackend(slots=1, outcome=outcome)
    sweep = Sweep(tmp_path, monkeypatch, backend, search={"method": "random", "trials": 10, "seed": 0})
    stats = sweep.run()
    assert sweep.engine.halted is None and stats.runs_done == 20


def test_rows_that_came_just_after_a_write_reach_the_table_without_another_run(tmp_path: Path) -> None:
    """The driver ticks the writer between results: rows that arrived within flush_s of the last write
    are written once flush_s has passed, though no run ends after them (the rest are long or stuck)."""
    import time

    spec = load_spec(sweep_spec())
    writer = TableWriter(tmp_path / "trials", trial_schema(spec), flush_s=0.2)
    row = {"trial": 0, "replicate": 0, "seed": 1, "status": "complete", "stage": "search", "attempt": 1}
    writer.append([row])  # within flush_s of the writer's start: buffered
    writer.tick()
    assert not (tmp_path / "trials").exists() or read_folder(tmp_path / "trials").num_rows == 0
    time.sleep(0.25)
    writer.tick()
    assert read_folder(tmp_path / "trials").num_rows == 1
    writer.close()
