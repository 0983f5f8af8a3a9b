"""Loading and calling the user's objective, on whichever process runs it.

The objective is a plain function (``module:function``) that needs no import of sweeper: it gets the
trial's variables as keyword arguments (plus ``seed`` when it has such a parameter) and returns a
number (the primary metric) or a dict of metrics.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from sweeper.errors import ObjectiveError
from sweeper.run import runtime
from sweeper.run.types import (
    MetricError,
    Outcome,
    Run,
    RunContext,
    pruned_metrics,
    tail,
    to_metrics,
    undeclared,
)

if TYPE_CHECKING:
    from sweeper.results.schema import Status

_cache: dict[tuple[str, str], Callable[..., Any]] = {}


def load_objective(ref: RunContext) -> Callable[..., Any]:
    if isinstance(ref.function, bytes):
        return _unpickled(ref.target, ref.function)
    if ref.function is not None:
        return ref.function
    key = (ref.target, ref.root)
    if key in _cache:
        return _cache[key]
    module_name, _, func_name = ref.target.partition(":")
    if module_name == "__main__" and not hasattr(sys.modules["__main__"], func_name):
        raise ObjectiveError(
            f"objective {ref.target} was a function given in Python (a notebook's or a script's own),"
            " so it cannot be imported here\n  fix: run it from that Python session, or move it to a"
            f" module file (models.py next to the results) and give objective: models:{func_name}"
        )
    if ref.root not in sys.path:
        sys.path.insert(0, ref.root)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            near = _close(module_name, _modules_in(ref.root))
            raise ObjectiveError(
                f"objective: cannot import module {module_name!r} (looked in {ref.root} and on PYTHONPATH)"
                + (f"\n  fix: did you mean {near}:{func_name}? Else" if near else "\n  fix:")
                + f" put {module_name.replace('.', '/')}.py in {ref.root}, or add its folder to PYTHONPATH"
            ) from None
        raise ObjectiveError(
            f"objective: importing {module_name!r} failed: {exc}"
            f"\n  fix: install the missing package {exc.name!r}"
        ) from None
    except (Exception, SystemExit) as exc:  # an import that exits must not end the sweep
        raise ObjectiveError(
            f"objective: importing {module_name!r} raised "
            f"{type(exc).__name__}: {exc}\n{tail(_import_traceback(exc))}"
        ) from None
    func = getattr(module, func_name, None)
    if not callable(func):
        functions = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        near = _close(func_name, functions)
        raise ObjectiveError(
            f"objective: module {module_name!r} has no function {func_name!r}"
            + (f"\n  fix: did you mean {module_name}:{near}? Else" if near else "\n  fix:")
            + f" define def {func_name}(...) in {module.__file__}"
        )
    _cache[key] = func
    return func  # type: ignore[no-any-return]


def pickled(target: str, func: Callable[..., Any]) -> bytes:
    """A function given as the objective, by value (with what it refers to), for Ray's workers."""
    from ray import cloudpickle

    dumps: Any = cloudpickle.dumps  # untyped
    try:
        return cast(bytes, dumps(func))
    except Exception as exc:
        raise ObjectiveError(
            f"objective {target}: cannot be sent to the workers: {type(exc).__name__}: {exc}"
            "\n  fix: leave out what cannot be pickled (open files, locks, connections) or create it inside"
            " the function; or use backend='local'"
        ) from None


@functools.lru_cache(maxsize=4)  # once per worker process, not per run; a long-lived cluster's
def _unpickle(data: bytes) -> Callable[..., Any]:  # workers serve many launches: keep the latest few
    function: Callable[..., Any] = pickle.loads(data)
    return function


def _unpickled(target: str, data: bytes) -> Callable[..., Any]:
    try:
        return _unpickle(data)
    except Exception as exc:
        missing = f"{exc.name!r} " if isinstance(exc, ModuleNotFoundError) else ""
        raise ObjectiveError(
            f"objective {target}: cannot be unpickled on this worker: {type(exc).__name__}: {exc}"
            f"\n  fix: make the module {missing}it uses importable on the workers (put its folder on"
            " PYTHONPATH, or next to where you launch), or move the function to a module file there"
        ) from None


def _modules_in(root: str) -> list[str]:
    """Modules importable from the sweep file's folder: ``x.py`` files and packages."""
    from pathlib import Path

    try:
        entries = list(Path(root).iterdir())
    except OSError:
        return []
    return [
        p.stem if p.suffix == ".py" else p.name
        for p in entries
        if p.suffix == ".py" or (p / "__init__.py").is_file()
    ]


def _close(name: str, names: Sequence[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return found[0] if found else None


def check_signature(
    func: Callable[..., Any],
    target: str,
    always: Sequence[str],
    sometimes: Sequence[str],
    offered: Sequence[str] = (),
) -> None:
    """Refuse, before any run, an objective that cannot accept the variables it will be given.

    ``always`` are passed to every run; ``sometimes`` (conditional variables) only when active, so
    those need a default only if no ``**kwargs`` catches them; ``offered`` (declared components) are
    passed only to a function with a parameter of that name.
    """
    sig = inspect.signature(func)
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepts: Callable[[str], bool] = lambda _: True  # noqa: E731
    else:
        accepts = lambda name: name in params  # noqa: E731
    for name in (*always, *sometimes):
        if not accepts(name):
            raise ObjectiveError(
                f"objective {target}: has no parameter {name!r}, a variable of the sweep"
                f"\n  fix: add {name}=... to its signature, or **kwargs"
            )
    given = {*always, *offered, "seed", "trial"}
    for p in params.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or p.default is not p.empty:
            continue
        if p.name in sometimes:
            raise ObjectiveError(
                f"objective {target}: parameter {p.name!r} is a conditional variable and"
                " is not passed when inactive"
                f"\n  fix: give it a default, e.g. {p.name}=None"
            )
        if p.name not in given:
            raise ObjectiveError(
                f"objective {target}: parameter {p.name!r} is not a variable of the sweep"
                f"\n  fix: add it under variables:, or give it a default"
            )


def wants(func: Callable[..., Any], name: str) -> bool:
    params = inspect.signature(func).parameters
    return name in params


def execute(ref: RunContext, runs: Sequence[Run], node: str | None = None) -> list[Outcome]:
    """Run a batch of runs in this process, one after the other; never raises for a run's error."""
    node = node or socket.gethostname()
    if ref.results_uri is not None:  # object storage: this machine reads and puts its own files
        return _stored(ref, runs, node)
    return _execute(ref, runs, node)


def _execute(ref: RunContext, runs: Sequence[Run], node: str) -> list[Outcome]:
    if ref.command is not None:
        from sweeper.run.command import run_command

        return [_timed(ref, run, node, run_command, ref, run, node) for run in runs]
    try:
        func = load_objective(ref)
    except ObjectiveError as exc:
        now = time.time()
        return [
            Outcome(r.trial, r.replicate, "failed", {}, now, now, node, r.attempt, str(exc), True)
            for r in runs
        ]
    params = inspect.signature(func).parameters
    pass_seed, pass_trial = "seed" in params, "trial" in params
    inputs = [(name, path) for name, path in ref.inputs if name in params]
    return [
        _timed(ref, run, node, _call, func, ref, run, node, pass_seed, pass_trial, inputs, params)
        for run in runs
    ]


def _stored(ref: RunContext, runs: Sequence[Run], node: str) -> list[Outcome]:
    """Declared components read from the bucket first; each run's artifacts put there after it."""
    from sweeper.run.stored import localize, ship

    try:
        here = localize(ref)
    except Exception as exc:
        now = time.time()
        error = (
            f"cannot read the sweep's declared components from {ref.results_uri} ({exc})"
            "\n  fix: check the storage credentials and endpoint the workers get"
            " (the driver's AWS_* variables)"
        )
        return [Outcome(r.trial, r.replicate, "failed", {}, now, now, node, r.attempt, error) for r in runs]
    return [ship(here, run, out) for run, out in zip(runs, _execute(here, runs, node), strict=True)]


def _worker_terminated(exc: SystemExit) -> bool:
    """Whether ``exc`` came from the process's own SIGTERM handler (Ray's, in a worker) rather than from
    the objective (Slurm preempting or requeueing the job signals every process of it). The handler is
    found by identity, so no name of Ray's is relied on."""
    handler = signal.getsignal(signal.SIGTERM)
    code = getattr(handler, "__code__", None)
    tb = exc.__traceback__
    while code is not None and tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


def _call(
    func: Callable[..., Any],
    ref: RunContext,
    run: Run,
    node: str,
    pass_seed: bool,
    pass_trial: bool,
    inputs: list[tuple[str, str]],
    params: Mapping[str, Any],
) -> Outcome:
    kwargs: dict[str, Any] = dict(run.params)
    if pass_seed:
        kwargs["seed"] = run.seed
    kwargs.update((name, seed) for name, seed in run.factor_seeds if name in params)  # data_seed=...
    rt = runtime.Trial(run, ref)
    if pass_trial:
        kwargs["trial"] = rt
    if inputs:
        kwargs.update(inputs)
    token = runtime.enter(rt)
    started = time.time()
    status: Status
    value: Any = None
    try:
        with kept_output(ref, run):
            value = func(**kwargs)
        if rt._told_prune:  # told to stop: it may return an estimate, or nothing
            metrics, status = pruned_metrics(value, rt.last_metrics, ref.metrics), "pruned"
        else:
            metrics, status = to_metrics(value, ref.metrics, ref.target), "complete"
        error, fatal = None, False
    except ObjectiveError as exc:
        metrics, status, error, fatal = {}, "failed", str(exc), True
    except MetricError as exc:
        metrics, status, error, fatal = {}, "failed", str(exc), False
    except SystemExit as exc:  # a run that exits ends only itself, on every backend
        if _worker_terminated(exc):
            raise  # the worker is being stopped (a preempted job): the run is lost, not failed
        metrics, status, fatal = {}, "failed", False
        error = (
            f"the objective called sys.exit({exc.code!r}) (SystemExit), which would end the worker;"
            " the run is recorded as failed\n  fix: return the metrics, or raise an exception"
            f" for a failed run\n{tail(traceback.format_exc())}"
        )
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # ours or Optuna's: ends with its last reports
            metrics = pruned_metrics(None, rt.last_metrics, ref.metrics)
            status, error, fatal = "pruned", None, False
        else:
            metrics, status, error, fatal = {}, "failed", tail(_user_traceback(exc)), False
    finally:
        runtime.leave(token)
    ended = time.time()
    history = components = None
    if rt._rows is not None or rt._logged is not None:  # it used the runtime: ship what it made
        # a gone channel (driver stopping) must not lose the run's result
        with contextlib.suppress(Exception):
            history, components = rt.close(status, metrics.get(ref.metrics[0]))
    return Outcome(
        run.trial,
        run.replicate,
        status,
        metrics,
        started,
        ended,
        node,
        run.attempt,
        error,
        fatal,
        history,
        components,
        undeclared(value, ref.metrics),
        rt.lacks_primary,
    )


@contextlib.contextmanager
def kept_output(ref: RunContext, run: Run) -> Iterator[None]:
    """A worker's run (``ref.keep_output``): what the objective prints goes to the run's
    ``stdout.log`` and ``stderr.log``, as a command's does; no screen shows a worker's output. In
    memory up to 1 MiB a stream, then on disk; a stream it never wrote makes no file."""
    if not ref.keep_output:
        yield
        return
    with (
        tempfile.SpooledTemporaryFile(1 << 20, "w+", encoding="utf-8", errors="replace") as out,
        tempfile.SpooledTemporaryFile(1 << 20, "w+", encoding="utf-8", errors="replace") as err,
    ):
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield
        finally:
            for name, stream in (("stdout.log", out), ("stderr.log", err)):
                if stream.tell():
                    stream.seek(0)
                    with contextlib.suppress(OSError):  # a full disk must not fail the run for its logs
                        folder = runtime.artifact_dir(ref, run)
                        folder.mkdir(parents=True, exist_ok=True)
                        with open(folder / name, "w", encoding="utf-8") as file:
                            shutil.copyfileobj(stream, file)


def _import_traceback(exc: BaseException) -> str:
    """The traceback of a module that failed to import, its own frames only: importlib's and
    sweeper's say nothing (a SyntaxError keeps just its file, line and caret)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename != __file__
        and not f.filename.startswith("<frozen ")
        and "/importlib/" not in f.filename
    ]
    head = "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames)) if frames else ""
    return head + "".join(traceback.format_exception_only(type(exc), exc))


def _user_traceback(exc: BaseException) -> str:
    """The traceback from the objective's own frame down: sweeper's calling frame says nothing."""
    tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, (tb.tb_next if tb else None) or tb))


class RunTimeout(BaseException):
    """Raised inside a run that passed its timeout; a BaseException so `except Exception` in user
    code cannot swallow it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise RunTimeout


def _timed(ref: RunContext, run: Run, node: str, call: Callable[..., Outcome], *args: Any) -> Outcome:
    """Run ``call`` under the run's timeout, counted from the run's own start (not its submission).

    SIGALRM interrupts Python code (and sleeps) in the worker's main thread; code stuck in C past it
    is killed by the driver's later deadline instead.
    """
    if ref.timeout is None or threading.current_thread() is not threading.main_thread():
        return call(*args)
    started = time.time()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, ref.timeout)
    try:
        return call(*args)
    except RunTimeout:
        return Outcome(
            run.trial,
            run.replicate,
            "timeout",
            {},
            started,
            time.time(),
            node,
            run.attempt,
            f"the run took longer than timeout: {ref.timeout:g}s and was stopped",
        )
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
