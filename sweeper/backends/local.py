"""In-process, one run at a time: for debugging (breakpoints and prints work) and tiny sweeps."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sweeper.backends.base import Done, Handle
from sweeper.run.objective import execute
from sweeper.run.types import Outcome, Run, RunContext


class LocalBackend:
    """Runs each batch inside ``submit``; ``wait`` hands back what is done."""

    slots = 1
    depth = 2

    def __init__(self, ref: RunContext):
        self.ref = ref
        self._done: dict[Handle, list[Outcome]] = {}
        self._next = 0

    def submit(self, runs: Sequence[Run]) -> int:
        handle = self._next
        self._next += 1
        self._done[handle] = execute(self.ref, runs)
        return handle

    def wait(self, handles: Collection[Handle], timeout: float | None) -> Done:
        return [(h, self._done.pop(h)) for h in handles if h in self._done]

    def cancel(self, handle: Handle) -> None:
        self._done.pop(handle, None)

    def close(self) -> None:
        self._done.clear()
