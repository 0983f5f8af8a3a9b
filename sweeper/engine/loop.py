"""The driver loop: keep every slot busy, expand trials into seeded runs, stream results as they land.

As-completed: each finished batch is written to the trial table and its slot refilled at once; a
trial is told to the search only when all its replicates are in (racing: when its race ends, see
sweeper.search.racing; the replicates a contender grows to are queued first). When runs are tiny, several are
packed into one backend task (sized from the measured run time) and a second task is queued per
slot, so workers never wait for the driver or the sampler.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sweeper.backends.base import Handle, NotStarted
from sweeper.errors import ObjectiveError, StorageError
from sweeper.results.values import SEARCH, better, trial_value, trial_values
from sweeper.run.types import Outcome, Run
from sweeper.search.racing import new_race, race_group
from sweeper.search.searcher import told_metrics
from sweeper.search.seeds import factor_seeds, replicate_seeds

if TYPE_CHECKING:
    from sweeper.backends import Backend
    from sweeper.engine.channel import Tracker
    from sweeper.engine.resume import Restored
    from sweeper.results.table import TableWriter
    from sweeper.search.searcher import Searcher
    from sweeper.spec.experiment import Experiment

MAX_ATTEMPTS = 3  # a run lost with its worker or node is tried this many times in all
TASK_SECONDS = 0.1  # runs are packed into tasks of about this length when they are shorter
MAX_BATCH = 1024
# Runs shorter than this get a second batch queued behind them on their slot, so a slot goes from one
# run to the next without waiting for the driver to record the last one and ask for the next (a
# sampler's ask, ~25 ms for TPE at 5,000 trials, then costs the slot nothing). Longer runs are not
# queued: a batch pinned behind a long run could wait that long while another slot sits idle.
QUEUE_S = 10.0
WAIT_S = 0.5  # longest the loop blocks without refreshing progress
SAME_ERROR_RUNS = 5  # the first this many runs failing with one error (over 2+ trials) stop the sweep


@dataclass(slots=True)
class _Trial:
    params: dict[str, Any]
    left: int
    values: list[list[float]] = field(default_factory=list)  # per replicate, per told metric
    statuses: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Stats:
    """What the progress line and the final summary show; updated in place by the engine."""

    trials_total: int
    replicates: int
    trials_done: int = 0
    runs_done: int = 0
    running: int = 0  # runs executing now: at most one per task in flight, at most one per slot
    queued: int = 0  # runs handed to the backend that wait for a free slot
    counts: dict[str, int] = field(default_factory=dict)
    best_value: float | None = None
    best_trial: int | None = None
    first_start: float | None = None
    last_end: float | None = None
    started: float = field(default_factory=time.time)
    stopping: str = ""  # why the engine stops launching, when it does
    runs_before: int = 0  # runs read back from the table on resume (not part of this launch's rate)
    first_new: float | None = None  # when this launch's first run began (a resume's table has older)
    ended: float | None = None  # when this launch's loop ended
    first_error: tuple[int, int, str] | None = None  # (trial, replicate, error): this launch's first failure
    undeclared: set[str] = field(default_factory=set)  # keys runs returned that no metric declares
    nonfinite: dict[str, int] = field(default_factory=dict)  # metric -> complete runs that gave nan/inf
    curves_without_primary: int = 0  # runs that reported steps, none with the primary metric

    @property
    def failed(self) -> int:
        return sum(n for s, n in self.counts.items() if s != "complete")

    @property
    def elapsed(self) -> float:
        return (self.ended or time.time()) - self.started

    @property
    def rate(self) -> float | None:
        """Runs/s, defined once for every view: runs this launch finished over its wall time so far
        (from the launch's start, so backend start-up counts; runs of earlier launches do not)."""
        done, elapsed = self.runs_done - self.runs_before, self.elapsed
        return done / elapsed if done > 0 and elapsed > 0 else None


class Engine:
    def __init__(
        self,
        spec: Experiment,
        searcher: Searcher,
        backend: Backend,
        writer: TableWriter,
        on_progress: Callable[[Stats], None] | None = None,
        restored: Restored | None = None,
        tracker: Tracker | None = None,
        *,
        seeds: list[int] | None = None,
        stage: str = SEARCH,
    ):
        self.spec, self.searcher, self.backend, self.writer = spec, searcher, backend, writer
        self.tracker = tracker  # history, pruning and components (sweeper.engine.channel); None: unused
        self.on_progress = on_progress or (lambda _s: None)
        # the confirmation stage (sweeper.engine.confirm) brings its own fresh seeds
        self.seeds = seeds or replicate_seeds(spec.search.seed, spec.replicates)
        self.stage = stage
        self.factor_seeds = [factor_seeds(spec.search.seed, spec.factors, r) for r in range(spec.replicates)]
        self.race = new_race(spec)  # adaptive replicates (replicates: {min, max}); None: fixed
        self.told = [m.name for m in told_metrics(spec)]
        self.stats = Stats(searcher.total, spec.replicates)
        self._as_text = _text_variables(spec)
        self._trials: dict[int, _Trial] = {}
        self._queue: deque[Run] = deque()
        self._inflight: dict[Handle, list[Run]] = {}
        self._run_s: float | None = None  # moving average of one run's duration
        self._stop = False
        self._why = "stopping"  # shown with the count of runs still running while stopping
        self._cancel = False
        self._deadlines: dict[Handle, float] = {}  # handle -> monotonic time its run is killed at
        self.halted: str | None = None  # why the sweep ended before its budget, when it did
        self.storage: StorageError | None = None  # the first write that failed, when one did
        self._early: list[tuple[int, str]] | None = []  # (trial, headline) of the first runs, all failed
        if restored is not None:
            self._restore(restored)

    def _restore(self, restored: Restored) -> None:
        """Start from a resumed trial table: count what is done, queue the missing replicates first."""
        s = self.stats
        s.runs_done, s.trials_done, s.counts = restored.runs_done, restored.trials_done, dict(restored.counts)
        s.runs_before = restored.runs_done
        s.first_start, s.last_end = restored.first_start, restored.last_end
        if restored.best is not None:
            s.best_value, s.best_trial = restored.best
        self.race = restored.race or self.race
        for k, p in restored.partial.items():
            self._trials[k] = _Trial(p.params, len(p.missing), list(p.values), list(p.statuses))
            self._queue.extend(self._run(k, r, p.params, p.attempts.get(r, 0) + 1) for r in p.missing)

    def stop(self, why: str = "stopping") -> None:
        """Stop launching new runs; those in flight finish and are recorded."""
        self._stop = True
        self._why = why

    def cancel(self) -> None:
        """Stop now: cancel the runs in flight (they run again on resume); keep all that finished."""
        self._stop = self._cancel = True

    def run(self) -> Stats:
        self._check_failures()  # a resumed sweep may already be over its limit
        try:
            while not self._cancel:
                try:
                    if not self._step():
                        break
                except StorageError as exc:
                    self._cannot_write(exc)
        finally:
            self._flush()  # what finished is on disk before anything in flight is cancelled
            if self._inflight:
                self.stats.stopping = f"cancelled {sum(map(len, self._inflight.values()))} runs in flight"
            for handle in self._inflight:
                self.backend.cancel(handle)
            self.stats.running = self.stats.queued = 0
            self.stats.ended = time.time()
            self._flush()
        try:
            self.on_progress(self.stats)
        except StorageError as exc:
            self._cannot_write(exc)
        return self.stats

    def _step(self) -> bool:
        """Launch, then record what finished; False when nothing is left in flight."""
        self._fill()
        if not self._inflight:
            return False
        for handle, result in self.backend.wait(list(self._inflight), WAIT_S):
            runs = self._inflight.pop(handle)
            self._deadlines.pop(handle, None)
            if isinstance(result, BaseException):
                self._lost(runs, result)
            else:
                self._record(result)
        self.writer.tick()  # what finished reaches the table while the runs in flight go on
        self._expire()
        if self.tracker is not None:
            self.tracker.poll()
        self._count_inflight()
        if self._stop:
            s = self.stats
            s.stopping = self._why
            if s.running + s.queued:
                s.stopping += (
                    f": waiting for the {s.running + s.queued} runs in flight"
                    f" ({s.running} running, {s.queued} queued)"
                )
        self.on_progress(self.stats)
        return True

    def _flush(self) -> None:
        try:
            self.writer.flush()
        except StorageError as exc:
            self._cannot_write(exc)

    def _cannot_write(self, exc: StorageError) -> None:
        """The results folder cannot be written: stop now, cancel what is in flight (it runs again
        on resume); the rows already recorded stay in the writer, which puts them aside at close."""
        if self.storage is None:
            self.storage = exc
        self.stop("the results folder cannot be written")
        self._cancel = True

    # -- launching -------------------------------------------------------------------------------
    def _fill(self) -> None:
        short = self._run_s is not None and self._run_s < QUEUE_S and self.spec.timeout is None
        depth = self.backend.depth if short else 1  # batches queued per slot
        while not self._stop and len(self._inflight) < depth * self.backend.slots:
            size = self._batch_size()
            self.searcher.max_pending = min(depth, 2) * self.backend.slots
            while len(self._queue) < size and self._expand():
                pass
            if not self._queue:
                break
            self._submit(self._take(size))
        self._count_inflight()

    def _count_inflight(self) -> None:
        """Running vs queued: a task runs its runs one after another and at most ``slots`` tasks
        execute at once, so runs beyond one per task or per slot are waiting."""
        runs = sum(len(r) for r in self._inflight.values())
        self.stats.running = min(len(self._inflight), self.backend.slots, runs)
        self.stats.queued = runs - self.stats.running

    def _take(self, size: int) -> list[Run]:
        """Up to ``size`` queued runs for one task; with variable resources, only runs that ask
        for the same resources as the first (a task asks for what one run needs)."""
        queue = self._queue
        if not self.spec.resources.cases:
            return [queue.popleft() for _ in range(min(size, len(queue)))]
        batch = [queue.popleft()]
        need = self.spec.resources.resolve(batch[0].params)
        while queue and len(batch) < size and self.spec.resources.resolve(queue[0].params) == need:
            batch.append(queue.popleft())
        return batch

    def _expand(self) -> bool:
        proposal = self.searcher.ask()
        if proposal is None:
            return False
        k, params = proposal.trial, proposal.params
        n = self.spec.replicates if self.race is None else self.race.add(k, race_group(self.spec, params))
        self._trials[k] = _Trial(params, n)
        self._queue.extend(self._run(k, r, params) for r in range(n))
        return True

    def _run(self, trial: int, r: int, params: dict[str, Any], attempt: int = 1) -> Run:
        return Run(trial, r, self.seeds[r], params, attempt, tuple(self.factor_seeds[r].items()))

    def _batch_size(self) -> int:
        if self._run_s is None or self.spec.timeout is not None:  # a timeout kills a run alone
            return 1
        if self._early is not None:  # no run has worked yet: one a task, so a bug stops the sweep soon
            return 1
        if self.searcher.adaptive:  # one trial a task: the sampler learns from each as it lands
            return self.spec.replicates
        size = TASK_SECONDS / max(self._run_s, 1e-6)
        left = len(self._queue) + (self.searcher.total - self.searcher.asked) * self.spec.replicates
        fair = math.ceil(left / (2 * self.backend.slots))  # keep the tail spread over every slot
        return int(max(1, min(size, MAX_BATCH, fair)))

    def _submit(self, runs: list[Run]) -> None:
        handle = self.backend.submit(runs)
        self._inflight[handle] = runs
        if self.spec.timeout is not None:  # the worker stops the run itself; this is the backstop
            self._deadlines[handle] = time.monotonic() + backstop(self.spec.timeout)

    def _expire(self) -> None:
        """Kill runs the worker could not stop at their timeout (stuck outside Python code)."""
        now = time.monotonic()
        for handle in [h for h, t in self._deadlines.items() if t <= now]:
            del self._deadlines[handle]
            runs = self._inflight.pop(handle)
            self.backend.cancel(handle)
            end = time.time()
            limit = self.spec.timeout or 0.0
            self._record(
                [
                    Outcome(
                        r.trial,
                        r.replicate,
                        "timeout",
                        {},
                        end - limit,
                        end,
                        "",
                        r.attempt,
                        f"the run took longer than timeout: {limit:g}s, did not stop, and"
                        f" was killed {backstop(limit):g}s after its submission",
                    )
                    for r in runs
                ]
            )

    # -- results ---------------------------------------------------------------------------------
    def _lost(self, runs: list[Run], exc: BaseException) -> None:
        """A batch died with its worker or node: retry each run alone, up to MAX_ATTEMPTS."""
        if isinstance(exc, NotStarted):  # never began: not an attempt
            self._submit(runs)
            return
        failed = []
        for run in runs:
            if run.attempt < MAX_ATTEMPTS:
                self._submit([replace(run, attempt=run.attempt + 1)])
            else:
                now = time.time()
                error = _died(run.attempt, exc)
                failed.append(
                    Outcome(run.trial, run.replicate, "failed", {}, now, now, "", run.attempt, error)
                )
        if failed:
            self._record(failed)

    def _record(self, outcomes: list[Outcome]) -> None:
        fatal = next((o for o in outcomes if o.fatal), None)
        if fatal is not None:
            self._stop = True
            raise ObjectiveError(fatal.error or "the objective is unusable")
        if self.tracker is not None:
            try:
                self.tracker.outcomes(outcomes)
            except StorageError as exc:  # the history: the runs themselves still go to the table
                self._cannot_write(exc)
        rows = []
        for o in outcomes:
            trial = self._trials[o.trial]
            rows.append(self._row(o, trial.params))
            self._note(o)
            trial.statuses.append(o.status)
            if o.status == "complete":
                trial.values.append([o.metrics.get(m, math.nan) for m in self.told])
            trial.left -= 1
            if self.race is not None:
                self.race.land(o.trial, o.replicate, o.metrics.get(self.told[0]), o.status)
            elif trial.left == 0:
                self._finish(o.trial, self._trials.pop(o.trial))
        try:
            self.writer.append(rows)  # on a failed write the rows stay in the writer's buffer
        except StorageError as exc:
            self._cannot_write(exc)
        if self.race is not None:
            self._race()
        self._check_failures()
        self._check_same_error(outcomes)

    def _check_same_error(self, outcomes: list[Outcome]) -> None:
        """Stop a sweep whose first SAME_ERROR_RUNS runs (from 2+ trials) failed with one error: a
        bug in the objective, not a bad variable set; the budget would be spent on it."""
        if self._early is None:
            return
        from sweeper.results.failures import headline

        for o in outcomes:
            if o.status == "failed":
                self._early.append((o.trial, headline(o.error)))
            elif o.status != "timeout":  # a run that worked: failures from here on are the trials'
                self._early = None
                return
        errors = {text for _, text in self._early}
        trials = {t for t, _ in self._early}
        if len(errors) > 1:
            self._early = None
        elif len(self._early) >= SAME_ERROR_RUNS and len(trials) >= 2 and self.halted is None:
            self.halted = (
                f"the first {len(self._early)} runs (of {len(trials)} trials) all failed with the same"
                f" error, so the sweep stopped instead of spending its budget on it: {errors.pop()}"
            )
            self._early = None
            self.stop("same error in every run")

    def _race(self) -> None:
        """Act on the race's decisions (sweeper.search.racing): queue the replicates a contender grows
        to ahead of new trials, and close the trials whose race ended."""
        assert self.race is not None
        grew, ended = self.race.advance()
        for k, n in reversed(grew):
            trial = self._trials[k]
            launched = len(trial.statuses) + trial.left
            trial.left += n - launched
            self._queue.extendleft(self._run(k, r, trial.params) for r in reversed(range(launched, n)))
        for k in ended:
            self._finish(k, self._trials.pop(k))

    def _check_failures(self) -> None:
        limit = self.spec.max_failures
        failed = sum(self.stats.counts.get(s, 0) for s in ("failed", "timeout"))
        if limit is not None and failed >= limit and self.halted is None:
            self.halted = (
                f"{failed} runs failed or timed out (max_failures: {limit}), so the sweep"
                " stopped launching runs"
            )
            self.stop("too many failures")

    def _note(self, o: Outcome) -> None:
        s = self.stats
        s.runs_done += 1
        s.counts[o.status] = s.counts.get(o.status, 0) + 1
        if s.first_error is None and o.status in ("failed", "timeout"):
            s.first_error = (o.trial, o.replicate, o.error or "")
        s.undeclared.update(o.undeclared)
        s.curves_without_primary += o.curve_lacks_primary
        for name, value in o.metrics.items() if o.status == "complete" else ():
            if not math.isfinite(value):
                s.nonfinite[name] = s.nonfinite.get(name, 0) + 1
        s.first_start = o.started if s.first_start is None else min(s.first_start, o.started)
        s.first_new = o.started if s.first_new is None else min(s.first_new, o.started)
        s.last_end = o.ended if s.last_end is None else max(s.last_end, o.ended)
        d = o.ended - o.started
        self._run_s = d if self._run_s is None else 0.8 * self._run_s + 0.2 * d

    def _finish(self, trial_id: int, trial: _Trial) -> None:
        self.stats.trials_done += 1
        if not trial.values or "pruned" in trial.statuses:  # pruning decides per trial
            status = "pruned" if "pruned" in trial.statuses else "failed"
            if self.tracker is not None:
                self.tracker.finished(trial_id, status, None)
            self.searcher.tell(trial_id, None, status)
            return
        means = trial_values(trial.values) or []
        if self.tracker is not None:
            self.tracker.finished(trial_id, "complete", means[0])
        self.searcher.tell(trial_id, means, "complete")
        value = trial_value([v[0] for v in trial.values])
        best, direction = self.stats.best_value, self.spec.primary.direction
        raced = self.race is None or len(trial.statuses) >= self.spec.replicates  # the best ran them all
        candidate = raced and self.stage == SEARCH  # a confirmation rerun is not one: best_trial's rule
        if candidate and value is not None and (best is None or better(direction, value, best)):
            self.stats.best_value, self.stats.best_trial = value, trial_id

    def _row(self, o: Outcome, params: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "trial": o.trial,
            "replicate": o.replicate,
            "seed": self.seeds[o.replicate],
            **self.factor_seeds[o.replicate],
            "stage": self.stage,
        }
        row.update(params)
        for name in self._as_text:
            if name in row:
                row[name] = str(row[name])
        row.update(o.metrics)
        row.update(o.columns())
        return row


def _text_variables(spec: Experiment) -> list[str]:
    """Variables stored as text although some values are not (mixed-type choices)."""
    import pyarrow as pa

    from sweeper.results.table import variable_type

    return [
        v.name
        for v in spec.variables
        if variable_type(v) == pa.string()
        and any(not isinstance(c, str) for c in (*v.choices, v.value) if c is not None)
    ]


def _died(attempts: int, exc: BaseException) -> str:
    """The error column of a run whose process died: say what that usually means."""
    detail = str(exc).strip().splitlines()
    first = next((line for line in detail if line.strip()), "")[:500]
    return (
        f"the process running this run died {attempts} times ({type(exc).__name__}: {first}). "
        "Usually the objective crashed the interpreter (a segfault, os._exit(), an abort in native"
        " code) or was killed for using too much memory; a lost node looks the same. The worker"
        " logs of the Ray session have the exit code or signal."
    )


def backstop(timeout: float) -> float:
    """When the driver kills a run that its worker failed to stop at ``timeout`` (from submission)."""
    return timeout + max(30.0, timeout)
