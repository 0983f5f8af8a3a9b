"""Command-line objectives: sweep any program, one process per run, metrics read back as JSON.

The sweep file's ``command:`` is split into arguments once (``shlex``) and each argument is formatted
with the run's values (``{lr}``, ``{seed}``, ``{trial}``, ``{replicate}``, ``{trial_dir}`` and the
declared components' paths). No shell runs unless ``shell: true``, and then every value is
shell-quoted, so a variable's value can never inject a command; a placeholder the template itself
puts inside quotes (``'{v}'``, ``"{v}"``, backticks, after a backslash or in a here-document) would
undo that quoting, so such templates are refused (:func:`check_shell_template`). The same values are
in the environment as ``SWEEPER_<NAME>`` (``SWEEPER_LR``, ``SWEEPER_SEED``, ``SWEEPER_TRIAL_DIR``, ...).

stdout is read as the program runs: a JSON object line with a ``step`` key is an intermediate report
(history and pruning; a pruned program is terminated), and the run's metrics are
``$SWEEPER_TRIAL_DIR/metrics.json`` when the program wrote it, else the last JSON object line.
stdout and stderr are kept in the run's artifact folder; a failed run's ``error`` holds their tail.

The run ends when the program exits, even if something it started still holds stdout open; then
whatever it left behind is ended (SIGTERM, SIGKILL after ``GRACE_S``): its process group, its session,
and any process carrying the run's ``SWEEPER__RUN`` marker in its environment (so a daemon that
made a session of its own goes too).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shlex
import signal
import string
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.history import HISTORY_COLUMNS
from sweeper.run import runtime
from sweeper.run.types import Outcome, pruned_metrics, to_metrics, undeclared

if TYPE_CHECKING:
    from sweeper.results.schema import Status
    from sweeper.run.types import Run, RunContext

TAIL = 2000  # characters of stderr (and stdout) kept in a failed run's error
GRACE_S = 5.0  # a stopped program (and what it left running) gets this long after SIGTERM
MARK = "SWEEPER__RUN"  # environment marker of a run's processes (no variable name maps to it)
_STARTS: dict[int, int] = {}  # program pid -> its start time, while its run lasts


class _Quoted(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return shlex.quote(format(value, format_spec))


def check_shell_template(template: str, source: str = "the sweep file") -> None:
    """Refuse a ``shell: true`` template that puts a placeholder where sweeper's quoting is undone.

    Each value is substituted as one single-quoted word. That is safe as a word of its own
    (``--tag {tag}``, ``--tag={tag}``) and inside ``$( )``, but inside the template's own quotes the
    added quotes close the user's (``'{v}'`` leaves the value bare), a backslash before the
    placeholder escapes the opening quote, backticks and here-documents re-read the text. Rather
    than guess the intent, those positions are refused before any run starts.
    """
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError:
        return  # malformed braces are the spec's to report
    quote = ""  # "'", '"', "$'" or "`" while inside one
    escaped = heredoc = False
    for literal, name, _spec, _conv in pieces:
        prev = ""
        for c in literal:
            if escaped:
                escaped = False
            elif quote == "'":
                quote = "" if c == "'" else quote
            elif quote:  # double quotes, $'...' and backticks honour backslashes
                if c == "\\":
                    escaped = True
                elif c == quote[-1]:
                    quote = ""
            elif c == "\\":
                escaped = True
            elif c in "'\"`":
                quote = "$'" if c == "'" and prev == "$" else c
            elif c == "<" and prev == "<":
                heredoc = True
            prev = "" if escaped else c
        if name is None:
            continue
        where = {"'": "single quotes", '"': "double quotes", "$'": "$'...' quotes", "`": "backticks"}
        problem = (
            f"inside {where[quote]}"
            if quote
            else "right after a backslash"
            if escaped
            else "in a here-document"
            if heredoc
            else ""
        )
        if problem:
            raise SweeperError(
                f"{source}: command: placeholder {{{name}}} is {problem} in a shell: true command;"
                " sweeper shell-quotes every value itself, and quoting around the placeholder would undo"
                " that and let a value run as shell code"
                f"\n  fix: write {{{name}}} bare, as a word of its own (e.g. --opt {{{name}}}, not"
                f" --opt '{{{name}}}' or \"{{{name}}}\"); each value arrives as exactly one argument"
            )
        escaped = False


def command_line(ref: RunContext, values: dict[str, Any]) -> list[str] | str:
    """The argument list (or, with ``shell: true``, the quoted shell line) for one run."""
    cmd = ref.command
    if cmd is None:
        raise TypeError("command_line: the run context has no command")
    if cmd.shell:
        check_shell_template(cmd.template)
        return _Quoted().format(cmd.template, **values)
    return [token.format(**values) for token in cmd.argv]


def _environment(values: dict[str, Any], mark: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"  # a Python script's step lines arrive as it prints them
    for name, value in values.items():
        env[f"SWEEPER_{name.upper()}"] = str(value)
    env[MARK] = mark
    return env


def _die_with_parent() -> None:
    """In the child: get SIGKILL if the worker dies (a killed Ray task must not leave it running)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes], mark: str) -> None:
    """End the program, if it still runs, and everything it left: SIGTERM, then SIGKILL after GRACE_S.

    The program leads its own session and process group (``start_new_session``), so both are found
    by its pid even after it exited; a descendant that made a session of its own is found by the
    marker in its environment.
    """
    left = _alive(proc, mark)
    if left:
        _signal(proc.pid, left, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = _alive(proc, mark)
        if left:
            _signal(proc.pid, left, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(GRACE_S)


def _alive(proc: subprocess.Popen[bytes], mark: str) -> set[int]:
    return _left_behind(proc.pid, mark) | ({proc.pid} if proc.poll() is None else set())


def _signal(leader: int, pids: set[int], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, sig)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def _started(pid: int) -> int:
    """A process's start time in clock ticks since boot (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return int(fh.read().rpartition(b")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def _left_behind(leader: int, mark: str) -> set[int]:
    """Live processes in the program's session or group, or carrying its marker (Linux /proc).

    Only processes started after the program can descend from it, so only their environments are
    read (the scan costs a few stat reads on a busy host)."""
    found: set[int] = set()
    since = _STARTS.get(leader, 0)
    needle = f"{MARK}={mark}".encode()
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found  # no /proc: the process group signal is all there is
    for entry in entries:
        if not entry.isdigit() or int(entry) in (me, leader):
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rpartition(b")")[2].split()
            if fields[0] == b"Z":  # a zombie is gone; its parent reaps it
                continue
            if int(fields[2]) == leader or int(fields[3]) == leader:  # process group, session
                found.add(int(entry))
                continue
            if int(fields[19]) < since:
                continue
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.add(int(entry))
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    return found


def run_command(ref: RunContext, run: Run, node: str) -> Outcome:
    command = ref.command
    if command is None:
        raise TypeError("run_command: the run context has no command")
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
    status: Status = "failed"
    metrics, error, fatal = {}, None, False
    extra: tuple[str, ...] = ()
    last: dict[str, Any] | None = None
    mark = uuid.uuid4().hex
    try:
        try:
            line = command_line(ref, values)
        except SweeperError as exc:
            raise _Unusable(str(exc)) from None
        with (
            open(folder / "stdout.log", "w", encoding="utf-8") as out,
            open(folder / "stderr.log", "w", encoding="utf-8") as err,
        ):
            try:
                proc = subprocess.Popen(  # no shell unless shell: true, and then values are quoted
                    line,
                    shell=command.shell,
                    cwd=command.workdir,
                    env=_environment(values, mark),
                    stdout=subprocess.PIPE,
                    stderr=err,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise _Unusable(
                    f"command: cannot start {line if isinstance(line, str) else line[0]!r}:"
                    f" {exc}\n  fix: check the program's name and the workdir "
                    f"{command.workdir}"
                ) from None
            _STARTS[proc.pid] = _started(proc.pid)
            try:
                last = _follow(proc, out, rt, ref, mark)
                rc = proc.wait()
            finally:
                _stop(proc, mark)
                _STARTS.pop(proc.pid, None)
                assert proc.stdout is not None
                proc.stdout.close()
        if rt.pruned:
            status, metrics = "pruned", pruned_metrics(None, rt.last_metrics, ref.metrics)
        elif rc != 0:
            error = f"command exited with code {rc}" + _tails(folder)
        else:
            status, (metrics, extra) = "complete", _metrics(ref, metrics_file, last, folder)
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
        extra,
        rt.lacks_primary,
    )


class _Unusable(Exception):
    """The command cannot run at all (every run would fail the same way)."""


class _NoMetrics(Exception):
    pass


def _follow(
    proc: subprocess.Popen[bytes], out: Any, rt: runtime.Trial, ref: RunContext, mark: str
) -> dict[str, Any] | None:
    """Copy stdout to its log until the program exits, turning step lines into reports; returns the
    last JSON object. A child that keeps stdout open does not hold the run: once the program has
    exited, what is already in the pipe is read and the rest is not waited for."""
    assert proc.stdout is not None  # we asked for a pipe
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        exited = os.pidfd_open(proc.pid)  # readable once the program exits (Linux 5.3+)
    except (AttributeError, OSError):
        exited = -1  # no pidfd: look at the program every 50 ms instead
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if exited >= 0:
        poller.register(exited, select.POLLIN)
    last: dict[str, Any] | None = None
    pending = b""
    drain_until = None  # after the program exits: read what is in the pipe, for at most a second
    try:
        while True:
            if drain_until is None and proc.poll() is not None:
                drain_until = time.monotonic() + 1.0
            wait_ms = 0 if drain_until is not None else (None if exited >= 0 else 50)
            ready = {f for f, _ in poller.poll(wait_ms)}
            if fd not in ready:
                if drain_until is not None:
                    break  # the program is gone and the pipe is drained
                continue
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:  # every writer closed stdout: only the exit is left to wait for
                proc.wait()
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                data = _line(raw.decode("utf-8", errors="replace") + "\n", out)
                if data is None:
                    continue
                last = data
                if _reported(data, rt) and ref.prune and rt.should_prune():
                    out.flush()
                    _stop(proc, mark)
                    return last
            if drain_until is not None and time.monotonic() > drain_until:
                break  # something it left behind keeps writing: not part of the run
    finally:
        if exited >= 0:
            os.close(exited)
    if pending:
        last = _line(pending.decode("utf-8", errors="replace"), out) or last
    return last


def _line(text: str, out: Any) -> dict[str, Any] | None:
    """Log one stdout line; the JSON object it holds, if any."""
    out.write(text)
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _reported(data: dict[str, Any], rt: runtime.Trial) -> bool:
    """Report a step line (a JSON object with an integer ``step``) to the trial's history."""
    step = data.get("step")
    if not (isinstance(step, int) and not isinstance(step, bool) and step >= 0):
        return False
    numbers = {
        k: v
        for k, v in data.items()
        if k != "step" and k not in HISTORY_COLUMNS and isinstance(v, int | float) and not isinstance(v, bool)
    }
    rt.report(step, **numbers)
    return True


def _metrics(
    ref: RunContext, metrics_file: Path, last: dict[str, Any] | None, folder: Path
) -> tuple[dict[str, float], tuple[str, ...]]:
    """The run's metrics, and the other keys it wrote (not recorded)."""
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
    found = {k: v for k, v in found.items() if k != "step"}
    try:
        return to_metrics(found, ref.metrics, "command"), undeclared(found, ref.metrics)
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
