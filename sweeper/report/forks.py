"""Work of ``sweeper report`` done beside it in a fork of its own process.

A fork starts with pandas, NumPy and sweeper's modules already imported (a new Python spends about a
CPU second on them); what it works on still goes down its pipe. It is made only where that is safe: on
Linux (macOS's system libraries are not fork-safe) and with no other Python thread in this process (a
fork could inherit a lock one of them holds: a notebook's kernel, a Ray driver). The native thread
pools left, NumPy's OpenBLAS and Arrow's, stop and restart around a fork (``pthread_atfork``).

A child answers once, with a pickle of ``("ok", result)`` or ``("error", exception, traceback)``;
:func:`outcome` turns that back into the result or raises the exception here, the child's traceback
attached, so whatever fails there fails the report as if it had run here.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import IO, Any, Protocol

from sweeper.errors import SweeperError


class Child(Protocol):
    """A child process as the report drives it: a ``subprocess.Popen`` or a :class:`Forked`."""

    @property
    def stdin(self) -> IO[bytes] | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    def poll(self) -> int | None: ...
    def kill(self) -> None: ...
    def wait(self) -> int: ...


def forkable() -> bool:
    """Linux, and no other Python thread here (see the module's docstring)."""
    import threading

    return sys.platform == "linux" and threading.active_count() == 1


class Forked:
    """A fork of this process doing ``work(stdin, stdout)``, with the part of ``subprocess.Popen``
    the report uses: its two pipes, ``poll``, ``kill`` and ``wait``."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid, self.stdin, self.stdout = pid, stdin, stdout
        self.returncode: int | None = None

    @classmethod
    def start(cls, work: Callable[[IO[bytes], IO[bytes]], None]) -> Forked:
        import warnings

        down, to_child = os.pipe()
        from_child, up = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns about any other OS thread; the only ones left are the native pools
            # named in the module's docstring
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: work, answer, and end without this process's exit handlers
            code = 1
            try:
                os.close(to_child)
                os.close(from_child)
                sys.stdout = sys.stderr  # a library's stray print stays out of the parent's output
                inp, reply = os.fdopen(down, "rb"), os.fdopen(up, "wb")
                try:
                    work(inp, reply)
                finally:
                    close(inp, reply)  # flushes the reply: os._exit would not
                code = 0
            finally:
                os._exit(code)
        os.close(down)
        os.close(up)
        return cls(pid, os.fdopen(to_child, "wb"), os.fdopen(from_child, "rb"))

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def kill(self) -> None:
        import signal

        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            _, status = os.waitpid(self.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode


def end(child: Child) -> None:
    """Kill the child if it still runs, reap it and close its pipes."""
    if child.poll() is None:
        child.kill()
    child.wait()
    close(child.stdin, child.stdout)


def close(*pipes: IO[bytes] | None) -> None:
    import contextlib

    for pipe in pipes:
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def answer(work: Callable[[], Any]) -> bytes:
    """The pickled outcome of ``work()``, which a child sends as its one reply."""
    import traceback

    try:
        told: tuple[Any, ...] = ("ok", work())
    except BaseException as exc:  # every failure goes back to the parent, which raises it
        told = ("error", exc, traceback.format_exc())
    try:
        return pickle.dumps(told)
    except Exception:  # an exception that does not pickle: its text still goes back
        return pickle.dumps(("error", None, told[-1]))


def outcome(reply: bytes, code: int, doing: str) -> Any:
    """The result in a child's reply, or its exception raised here with the child's traceback;
    ``doing`` names the child's work in messages ("drawing the report's figures")."""
    if not reply:
        raise SweeperError(
            f"the process {doing} ended (exit code {code}) before it finished; "
            "its own error, if any, is printed above"
        )
    told = pickle.loads(reply)
    if told[0] == "ok":
        return told[1]
    _, exc, trace = told
    if exc is None:  # an exception pickle could not carry
        raise SweeperError(f"{doing} failed:\n{trace}")
    exc.add_note(f"raised in the process {doing}:\n{trace}")
    raise exc
