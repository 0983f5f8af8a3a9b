"""The Python API: ``sweeper.launch(...)`` runs a sweep and returns what it produced.

The CLI is a thin face over this module; everything a command does can be done from a notebook.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.engine.plan import check_launchable, resume_words
from sweeper.errors import StorageError, SweeperError, command, option
from sweeper.results.folder import (
    STORAGE_STOPPED,
    experiment_folder,
    move_aside,
    storage_message,
    write_experiment,
)
from sweeper.results.lock import DriverLock
from sweeper.results.status import launch_command
from sweeper.results.store import is_uri, storage_env
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, read_json
from sweeper.spec.experiment import Experiment, Tracking
from sweeper.spec.model import check_experiment, load_spec

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.engine.loop import Stats
    from sweeper.engine.profile import Profile
    from sweeper.results.store import Uploader
    from sweeper.run.types import RunContext


@dataclass(frozen=True, slots=True)
class SweepResult:
    """A finished (or stopped) sweep: where its results are, and quick ways to read them.

    With results on object storage (``results="s3://..."``) ``path`` is the launch's local staging
    copy, which was uploaded in full: it stays for this Python process, so ``table`` and ``best``
    read it, and is removed when the process exits. Read the URI (``sweeper.load(uri)``) after that.
    """

    spec: Experiment
    path: Path
    stats: Stats

    @property
    def table(self) -> pd.DataFrame:
        from sweeper.results.table import load

        return load(self.path)

    @property
    def best(self) -> dict[str, Any] | None:
        """The best trial by the mean of the primary metric over its complete replicates."""
        from sweeper.results.values import best_trial

        return best_trial(self.table, self.spec)

    @property
    def best_per_setting(self) -> list[dict[str, Any]]:
        """With ``compare: within:``, the best trial of each setting (``setting``: {"dataset": "iris"});
        ``best`` across them would be the easiest setting's. Empty without ``within``."""
        from sweeper.results.values import best_per_setting

        return best_per_setting(self.table, self.spec)

    def __fspath__(self) -> str:
        """The results folder: ``sweeper.verdict(result)``, ``sweeper.load(result)`` and ``Path(result)``
        take a result where they take its folder."""
        return str(self.path)

    @property
    def warnings(self) -> list[str]:
        """What the launch summary warns of: a declared metric no run reported, nan or inf values,
        returned keys no metric declares (counted over this launch's runs)."""
        from sweeper.engine.progress import metric_warnings

        return metric_warnings(self.stats, self.table, [m.name for m in self.spec.metrics])

    def __repr__(self) -> str:
        """One line at a REPL, not the spec and counters in full (those are its fields)."""
        from sweeper.engine.progress import best_so_far, counts_line

        s = self.stats
        best = "" if s.best_value is None else "; " + best_so_far(s, self.spec.metrics[0].name)
        return f"<SweepResult {counts_line(s, self.spec.name)}{best}; path={str(self.path)!r}>"

    def _repr_html_(self) -> str:
        from sweeper.analysis import aggregate
        from sweeper.analysis.display import sweep_html
        from sweeper.engine.progress import metric_warnings

        table = self.table
        warned = metric_warnings(self.stats, table, [m.name for m in self.spec.metrics])
        agg = aggregate(table, self.spec)
        return sweep_html(self.spec, str(self.path), table, agg, self.stats.counts, warned)


def launch(
    sweep: str | Path | Mapping[str, Any] | Experiment,
    *,
    results: str | Path = "results",
    backend: str = "ray",
    address: str | None = None,
    fresh: bool = False,
    retry_failed: bool = False,
    progress: bool | None = None,
    profile: bool = False,
    mlflow: str | None = None,
) -> SweepResult:
    """Run a sweep from a sweep file, a spec dict or an :class:`Experiment`; block until it ends.

    ``backend`` is ``ray`` (embedded Ray unless ``address`` names a cluster, or the current
    connection inside a Ray job) or ``local`` (in-process, sequential). An existing results folder
    of the same experiment is resumed (``retry_failed`` reruns its failed and timed-out replicates);
    ``fresh`` moves it aside (renamed with a timestamp) and starts over. Nothing is ever deleted.

    ``progress``: ``None`` (default) shows a live bar in Jupyter and the progress line on a terminal,
    and nothing when stderr is a log file; ``True`` always shows it, ``False`` never.
    ``profile`` prints where the time went (spec, resume, components, Ray start, runs, compaction,
    shutdown) to stderr at the end.

    ``mlflow``: a tracking URI (``http://HOST:PORT``, ``sqlite:///PATH``) the driver mirrors every run
    to, as the sweep file's ``tracking: {mlflow: {uri: ...}}`` does (this argument wins).
    """
    from sweeper.engine.profile import Profile

    prof = Profile()  # from the call on: imports, the spec's loading and a bucket's download count
    spec = check_experiment(sweep) if isinstance(sweep, Experiment) else load_spec(sweep)
    check_launchable(spec)
    if mlflow:
        old = spec.tracking.mlflow_experiment if spec.tracking else None
        spec = replace(spec, tracking=Tracking(mlflow, old))
    call = _Call(
        sweep,
        backend,
        address,
        prof,
        fresh=fresh,
        retry_failed=retry_failed,
        progress=progress,
        profile=profile,
    )
    if is_uri(results):  # object storage: run in a local folder that is streamed up (results/store.py)
        from sweeper.results.lock import check_no_live_driver
        from sweeper.results.store import staged

        experiment_folder(spec, ".")  # the name goes into the URI: the same rule
        if fresh:  # moving aside locally would delete the old objects from the bucket
            raise SweeperError(
                f"{option('fresh')} with results on object storage ({results}) is refused: sweeper never"
                " deletes results\n  fix: give the experiment a new name, or move the prefix aside yourself"
            )
        from sweeper.engine.signals import Interrupted

        with staged(str(results), spec.name, check_no_live_driver) as store:
            root = store.folder.parent
            try:
                return _launch(spec, root, replace(call, store=store))
            except StorageError:  # names the staging copy where it failed, and the bucket
                raise
            except (Interrupted, SweeperError) as exc:  # name the bucket, not the staging copy
                raise type(exc)(str(exc).replace(str(root), str(results).rstrip("/"))) from None
    return _launch(spec, results, call)


@dataclass(frozen=True, slots=True)
class _Call:
    """What one :func:`launch` call asked for, handed down whole through its steps."""

    sweep: Any  # as given: a path names the sweep file in the resume check and the resume hint
    backend: str
    address: str | None
    prof: Profile  # kept either way; printed at the end with ``profile``
    _: KW_ONLY
    fresh: bool
    retry_failed: bool
    progress: bool | None
    profile: bool
    store: Uploader | None = None  # streams the local results root up when it mirrors a URI

    @property
    def says(self) -> bool:
        """Whether the launch talks on stderr: asked to, or by default on a terminal."""
        return bool(self.progress or (self.progress is None and sys.stderr.isatty()))

    def connect_soon(self) -> Future[bool]:
        """Start Ray in a thread, beside the driver's own preparation (its time is profiled)."""
        from sweeper.backends.ray import connect_soon

        return connect_soon(self.address, lambda begin, end: self.prof.note("ray start", begin, end))

    def record(self, folder: Path, spec: Experiment, status: str) -> None:
        """Write experiment.json, with how this call launched (for the resume hint)."""
        from sweeper.engine.resume import fingerprint

        write_experiment(
            folder,
            spec,
            status=status,
            backend=self.backend,
            address=self.address,
            fingerprint=fingerprint(spec),
        )


def _launch(spec: Experiment, results: str | Path, call: _Call) -> SweepResult:
    """A launch into a local results root (streamed to object storage when ``call.store`` is set)."""
    from sweeper.backends import BACKENDS
    from sweeper.engine.resume import holds_experiment

    if call.backend not in BACKENDS:
        raise SweeperError(f"backend {call.backend!r} is unknown\n  fix: use one of {', '.join(BACKENDS)}")
    folder = experiment_folder(spec, results)
    call.prof.note("spec", call.prof.started, time.time())
    # A new sweep has work for sure, and so, nearly always, has one whose driver died or was
    # interrupted: Ray starts now, beside the objective's import, the resume state and the
    # components. A resume of a finished sweep starts it only once the table says work is left.
    connecting = None
    if call.backend == "ray" and (call.fresh or not holds_experiment(folder) or not _ended(folder)):
        connecting = call.connect_soon()
    try:
        return _checked_launch(spec, folder, call, connecting)
    finally:
        if connecting is not None:  # the backend has ended it already, unless the launch failed first
            from sweeper.backends.ray import end_connection

            end_connection(connecting)


def _ended(folder: Path) -> bool:
    """Whether the folder's last driver finished its sweep (a SIGKILLed one left "running")."""
    try:
        return read_json(folder / EXPERIMENT_JSON).get("status") == "finished"
    except (SweeperError, AttributeError):
        return True  # unreadable: resume names the problem; no Ray for it


def _checked_launch(
    spec: Experiment, folder: Path, call: _Call, connecting: Future[bool] | None
) -> SweepResult:
    """Load and check the objective, then hold the folder's driver lock for the run."""
    from sweeper.engine.plan import checked_objective
    from sweeper.engine.resume import holds_experiment
    from sweeper.run.objective import pickled, wants
    from sweeper.run.types import RunContext

    spec_start = time.time()
    metric_names = tuple(m.name for m in spec.metrics)
    func = checked_objective(spec)
    wants_trial = func is None or wants(func, "trial")  # a command's output is always read for reports
    call.prof.note("objective", spec_start, time.time())
    store = call.store
    ref = RunContext(
        spec.objective or "",
        spec.root,
        metric_names,
        folder=str(folder),
        prune=spec.pruner is not None,
        command=spec.command,
        timeout=spec.timeout,
        results_uri=store.uri if store is not None else None,  # runs put their artifacts there
        storage_env=storage_env() if store is not None else (),
        function=pickled(spec.objective or "", spec.function)
        if spec.function is not None and call.backend != "local"
        else spec.function,
    )
    lock = DriverLock(folder).acquire()  # refuses a folder another driver is running
    if call.fresh and holds_experiment(folder):
        lock.release()
        moved = move_aside(folder)
        if call.says:
            print(f"moved the earlier results aside to {moved}", file=sys.stderr)  # never deleted
        lock = DriverLock(folder).acquire()
    try:
        return _run(spec, ref, folder, call, wants_trial=wants_trial, connecting=connecting)
    finally:
        lock.release()


def _run(
    spec: Experiment,
    ref: RunContext,
    folder: Path,
    call: _Call,
    *,
    wants_trial: bool,
    connecting: Future[bool] | None,
) -> SweepResult:
    """Resume or start the sweep in ``folder`` (its lock held) and run it to its end."""
    from sweeper.backends import make_backend
    from sweeper.engine.channel import POLL_S, Tracker, open_channel
    from sweeper.engine.confirm import confirmation, pending
    from sweeper.engine.inputs import prepare
    from sweeper.engine.loop import Engine
    from sweeper.engine.resume import check_compatible, holds_experiment, restore
    from sweeper.engine.signals import Interrupted, stop_on_interrupt
    from sweeper.results.lock import Heartbeat
    from sweeper.results.table import TableWriter, take_in, trial_schema
    from sweeper.search.searcher import Searcher

    prof, store, backend, address = call.prof, call.store, call.backend, call.address
    searcher = Searcher(spec)
    restored = None
    resuming = holds_experiment(folder)
    take_in(folder / TRIALS)  # runs a storage fault put aside count as done (this driver holds the lock)
    say = call.says
    shown = store.uri if store is not None else folder  # what the user knows the folder by
    if say and not resuming:
        print(f"results: {shown} (new experiment)", file=sys.stderr)
    if resuming:
        with prof.phase("resume"):
            check_compatible(
                folder, spec, None if isinstance(call.sweep, Mapping | Experiment) else str(call.sweep)
            )
            restored = restore(spec, folder, searcher, retry_failed=call.retry_failed)
    done = restored is not None and not restored.partial and searcher.exhausted and not pending(spec, folder)
    if say and restored is not None:
        print(f"resuming {shown}: {resume_words(restored, done, spec.source)}", file=sys.stderr)
    where = backend
    if done:
        where = "local"  # nothing left to run: never start Ray (seconds) for it
    elif where == "ray" and connecting is None:  # a resume with work left: start Ray now, beside the rest
        connecting = call.connect_soon()
    try:
        with prof.phase("components"):
            inputs = prepare(spec, folder)  # refuses changed inputs on a resume; runs shared jobs once
            channel, start_monitor = open_channel(spec, where, wants_trial)
            ref = replace(ref, channel=channel, inputs=tuple(inputs.paths.items()) if inputs else ())
            call.record(folder, spec, "running")
            if store is not None and inputs is not None:  # runs elsewhere read them from the bucket
                store.push()
            writer = TableWriter(folder / TRIALS, trial_schema(spec))
        with prof.phase("backend"):
            runner = make_backend(where, spec, ref, address=address, connecting=connecting)
    except BaseException:
        if connecting is not None:
            from sweeper.backends.ray import end_connection

            end_connection(connecting)
        raise
    mirror = None
    if spec.tracking is not None:  # logs from a driver thread; catches up on what a resume finds
        from sweeper.integrations.mlflow import LiveMirror

        mirror = LiveMirror(folder, spec, spec.tracking.mlflow_uri, spec.tracking.mlflow_experiment)
    tracker = None
    from sweeper.engine.progress import progress_display

    on_progress = progress_display(spec.primary.name, call.progress, folder)
    heartbeat = Heartbeat(folder, on_progress)
    engine = Engine(spec, searcher, runner, writer, heartbeat, restored)
    status, signals = "failed", [0]
    faults: list[StorageError] = []  # writes that failed: the first one stopped the sweep
    try:
        tracker = engine.tracker = Tracker(
            folder,
            spec,
            searcher,
            start_monitor(),
            inputs=inputs,
            poll_s=0.0 if where == "local" else POLL_S,
        )
        writer.before_flush = tracker.flush  # a row lands after its runs' links
        if restored is not None:
            tracker.replay(folder, restored.partial)
        with stop_on_interrupt(engine, runs_here=where == "local") as signals:
            stats = engine.run()
        follow = (
            None
            if signals[0] or engine.halted or engine.storage
            else confirmation(spec, folder, engine, retry_failed=call.retry_failed)
        )
        if follow is not None:  # compare: {confirm: N}: the chosen configurations on fresh seeds
            engine = follow
            with stop_on_interrupt(engine, runs_here=backend == "local") as signals:
                stats = engine.run()
        status = "interrupted" if signals[0] else ("stopped" if engine.halted else "finished")
    except KeyboardInterrupt:
        status = "interrupted"
    except StorageError as exc:  # a write outside the engine's loop (replay, the confirmation's start)
        faults.append(exc)
    finally:
        faults[:0] = [engine.storage] if engine.storage is not None else []
        if tracker is not None:
            _saving(tracker.close, faults)
        with prof.phase("compaction"):
            _saving(writer.close, faults)
        with prof.phase("shutdown"):
            runner.close()
        if faults:
            status = STORAGE_STOPPED
        recorded = _saving(lambda: call.record(folder, spec, status), faults)
        if mirror is not None:
            mirror.close()
        _saving(lambda: heartbeat.write(engine.stats, status), faults)
        if on_progress is not None:
            if status != "failed":
                on_progress.close(engine.stats)
            else:
                on_progress.end_line()  # the error printed next starts on a line of its own
        if call.profile:
            print(prof.format(engine.stats.first_new, engine.stats.last_end), file=sys.stderr)
    source = str(Path(call.sweep).resolve()) if isinstance(call.sweep, str | Path) else spec.source
    again = launch_command(source, shown, backend, address)
    if faults:
        raise StorageError(
            storage_message(
                spec,
                folder,
                runs_done=engine.stats.runs_done,
                stopping=engine.stats.stopping,
                writer=writer,
                faults=faults,
                recorded=recorded,
                again=again,
                uri=store.uri if store is not None else None,
            )
        )
    if status == "interrupted":
        s = engine.stats
        raise Interrupted(
            f"interrupted: {s.runs_done} runs are recorded in {shown}"
            f"{' (' + s.stopping + ')' if s.stopping.startswith('cancelled') else ''}."
            f"\nresume with: {again}"
        )
    if engine.halted:
        raise SweeperError(
            f"{spec.name}: {engine.halted}. Every run so far is recorded in {shown}."
            f"\n  fix: `{command('errors', shown)}` prints the tracebacks; fix the cause, then relaunch"
            f" with {option('retry_failed')} to rerun the failed runs"
            + (", or raise max_failures" if "max_failures" in engine.halted else "")
        )
    return SweepResult(spec, folder, stats)


def _saving(step: Callable[[], object], faults: list[StorageError]) -> bool:
    """Run one closing write; a StorageError joins ``faults`` (the sweep is stopping anyway)."""
    try:
        step()
    except StorageError as exc:
        faults.append(exc)
        return False
    return True
