"""Ctrl-C during a sweep: the first stops launching and lets running runs finish, the second cancels.

Nothing that finished is lost either way: the engine writes every recorded run before it returns,
and runs cancelled by a second Ctrl-C have no row, so a resume runs them again.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeper.engine.loop import Engine


class Interrupted(KeyboardInterrupt):
    """The sweep stopped for Ctrl-C (or SIGINT/SIGTERM); the message says how to resume it."""


@contextmanager
def stop_on_interrupt(engine: Engine, *, runs_here: bool = False) -> Iterator[list[int]]:
    """While the block runs, SIGINT and SIGTERM stop ``engine`` gently, then firmly.

    Yields a one-item list holding how many signals arrived. ``runs_here`` says the objective runs
    in this thread (local backend): the engine cannot see a flag until the run returns, so the
    second signal raises KeyboardInterrupt into the objective instead. Outside the main thread
    (where Python cannot install handlers) nothing changes.
    """
    count = [0]
    if threading.current_thread() is not threading.main_thread():
        yield count
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        count[0] += 1
        name = signal.Signals(signum).name
        if count[0] == 1:
            engine.stop("stopping (Ctrl-C)")
            s = engine.stats
            what = (
                "run in progress"
                if runs_here
                else f"{s.running + s.queued} runs in flight ({s.running} running, {s.queued} queued)"
            )
            _say(
                f"{name}: no new runs; waiting for the {what} to finish and be recorded."
                " Press Ctrl-C again to cancel."
            )
            return
        engine.cancel()
        _say(f"{name} again: cancelling the running runs; everything finished is kept.")
        if runs_here:
            raise KeyboardInterrupt

    old = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield count
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _say(text: str) -> None:
    print(f"\n{text}", file=sys.stderr, flush=True)
