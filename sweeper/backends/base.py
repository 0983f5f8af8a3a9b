"""The backend seam: what the engine asks of a place that runs batches of runs."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sweeper.run.types import Outcome, Run


class NotStarted(Exception):  # a state, not a failure of the runs
    """A batch lost before any of its runs began (it was queued behind a batch whose crash took
    the worker): the engine runs it again without counting an attempt."""


class Backend(Protocol):
    """The seam between the engine and a place to run.

    ``slots`` is how many runs can execute at once with the experiment's resources. ``wait`` returns
    the handles that finished within ``timeout`` seconds, each with its outcomes or the exception that
    lost the whole batch (a dead worker or node); outcomes of runs that raised are not exceptions.
    """

    slots: int

    def submit(self, runs: Sequence[Run]) -> Any: ...

    def wait(
        self, handles: Collection[Any], timeout: float | None
    ) -> list[tuple[Any, list[Outcome] | BaseException]]: ...

    def cancel(self, handle: Any) -> None: ...

    def close(self) -> None: ...
