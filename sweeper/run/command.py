"""Command-line objectives: sweep any program, one process per run, metrics read back as JSON.

The sweep file's ``command:`` is split into arguments once (``shlex``) and each argument is formatted
with the run's values (``{lr}``, ``{seed}``, ``{trial}``, ``{replicate}``, ``{trial_dir}`` and the
declared components' paths). No shell runs unless ``shell: true``, and then every value is
shell-quoted, so a variable's value can never inject a command. The same values are in the
environment as ``SWEEPER_<NAME>`` (``SWEEPER_LR``, ``SWEEPER_SEED``, ``SWEEPER_TRIAL_DIR``, ...).

stdout is read line by line as the program runs: a JSON object with a ``step`` key is an
intermediate report (history and pruning; a pruned program is terminated), and the run's metrics
are ``$SWEEPER_TRIAL_DIR/metrics.json`` when the program wrote it, else the last JSON object line.
stdout and stderr are kept in the run's artifact folder; a failed run's ``error`` holds their tail.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.results.history import HISTORY_COLUMNS
from sweeper.run import runtime
from sweeper.run.types import Outcome, pruned_metrics, to_metrics

if TYPE_CHECKING:
    from sweeper.run.types import Run, RunContext

TAIL = 2000  # characters of stderr (and stdout) kept in a failed run's error
GRACE_S = 5.0  # a pruned program gets this long to exit after SIGTERM before SIGKILL


class _Quoted(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return shlex.quote(format(value, format_spec))


def command_line(ref: RunContext, values: dict[str, Any]) -> list[str] | str:
    """The argument list (or, with ``shell: true``, the quoted shell line) for one run."""
    cmd = ref.command
    if cmd.shell:
        return _Quoted().format(cmd.template, **values)
    return [token.format(**values) for token in cmd.argv]


def _environment(values: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # a Python script's step lines arrive as it prints them
    for name, value in values.items():
        env[f"SWEEPER_{name.upper()}"] = str(value)
    return env


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the worker dies (a killed Ray task must not leave it running)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[str]) -> None:
    """Terminate the program and whatever it started (it leads its own process group)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_command(ref: RunContext, run: Run, node: str) -> Outcome:
    rt = runtime.Trial(run, ref)
    folder = rt.artifact_dir
    metrics_file = folder / "metrics.json"
    metrics_file.unlink(missing_ok=True)  # a retried run must not read its earlier attempt's file
    values: dict[str, Any] = {
        **run.params,
        "seed": run.seed,
        "trial": run.trial,
        "replicate": run.replicate,
        "trial_dir": str(folder),
        **dict(ref.inputs),
    }
    started = time.time()
    status, metrics, error, fatal = "failed", {}, None, False
    last: dict[str, Any] | None = None
    try:
        line = command_line(ref, values)
        with (
            open(folder / "stdout.log", "w", encoding="utf-8") as out,
            open(folder / "stderr.log", "w", encoding="utf-8") as err,
        ):
            try:
                proc = subprocess.Popen(  # no shell unless shell: true, and then values are quoted
                    line,
                    shell=ref.command.shell,
                    cwd=ref.command.workdir,
                    env=_environment(values),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                    bufsize=1,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise _Unusable(
                    f"command: cannot start {line if isinstance(line, str) else line[0]!r}:"
                    f" {exc}\n  fix: check the program's name and the workdir "
                    f"{ref.command.workdir}"
                ) from None
            try:
                last = _follow(proc, out, rt, ref)
                rc = proc.wait()
            finally:
                _stop(proc)
        if rt.pruned:
            status, metrics = "pruned", pruned_metrics(None, rt.last_metrics, ref.metrics)
        elif rc != 0:
            error = f"command exited with code {rc}" + _tails(folder)
        else:
            status, metrics = "complete", _metrics(ref, metrics_file, last, folder)
    except _Unusable as exc:
        error, fatal = str(exc), True
    except _NoMetrics as exc:
        error = str(exc)
    except Exception as exc:  # e.g. the artifact folder is not writable
        error = f"command: {type(exc).__name__}: {exc}"
    ended = time.time()
    try:
        history, components = rt.close(status, metrics.get(ref.metrics[0]))
    except Exception:  # the channel is gone (driver stopping): the run's result still counts
        history, components = None, None
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
    )


class _Unusable(Exception):
    """The command cannot run at all (every run would fail the same way)."""


class _NoMetrics(Exception):
    pass


def _follow(
    proc: subprocess.Popen[str], out: Any, rt: runtime.Trial, ref: RunContext
) -> dict[str, Any] | None:
    """Copy stdout to its log, turning step lines into reports; returns the last JSON object."""
    last = None
    assert proc.stdout is not None  # we asked for a pipe
    for text in proc.stdout:
        out.write(text)
        stripped = text.strip()
        if not (stripped.startswith("{") and stripped.endswith("}")):
            continue
        try:
            data = json.loads(stripped)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        last = data
        step = data.get("step")
        if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
            numbers = {
                k: v
                for k, v in data.items()
                if k != "step"
                and k not in HISTORY_COLUMNS
                and isinstance(v, int | float)
                and not isinstance(v, bool)
            }
            rt.report(step, **numbers)
            if ref.prune and rt.should_prune():
                out.flush()
                _stop(proc)
                break
    return last


def _metrics(
    ref: RunContext, metrics_file: Path, last: dict[str, Any] | None, folder: Path
) -> dict[str, float]:
    found: Any = last
    where = "the last JSON line on stdout"
    if metrics_file.is_file():
        where = str(metrics_file)
        try:
            found = json.loads(metrics_file.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise _NoMetrics(f"command: {where} is not valid JSON ({exc})") from None
    if not isinstance(found, dict) or ref.metrics[0] not in found:
        primary = ref.metrics[0]
        raise _NoMetrics(
            f"command: no {primary!r} in {where} (found {found!r:.200})\n  fix: print a last line "
            f'like {{"{primary}": 0.93}} to stdout, or write it to $SWEEPER_TRIAL_DIR/metrics.json'
            + _tails(folder)
        )
    try:
        return to_metrics({k: v for k, v in found.items() if k != "step"}, ref.metrics, "command")
    except Exception as exc:
        raise _NoMetrics(str(exc)) from None


def _tails(folder: Path) -> str:
    parts = []
    for name in ("stderr.log", "stdout.log"):
        path = folder / name
        with contextlib.suppress(OSError):
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                parts.append(f"\n--- {name} (tail) ---\n{text[-TAIL:]}")
    return "".join(parts)
