"""The backend seam: what the engine asks of a place that runs batches of runs."""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sweeper.run.types import Outcome, Run

# A backend's token for one submitted batch (an int, a Ray ObjectRef): compared and hashed only.
Handle = Hashable
Done = list[tuple[Handle, "list[Outcome] | BaseException"]]  # what wait() returns


class NotStarted(Exception):  # a state, not a failure of the runs
    """A batch lost before any of its runs began (it was queued behind a batch whose crash took
    the worker): the engine runs it again without counting an attempt."""


class Backend(Protocol):
    """The seam between the engine and a place to run. The whole contract, which
    ``tests/integration/test_backend_contract.py`` checks for every backend:

    - ``slots``: how many runs execute at once with the experiment's resources (at least 1). It may
      change between calls (nodes come and go); the engine reads it before each fill.
    - ``depth``: how many batches the engine may keep queued per slot when runs are short, so a
      worker finds its next batch waiting (at least 1). With long runs or timeouts the engine
      queues one per slot whatever ``depth`` says.
    - ``submit(runs)``: start one batch (one run, or several short runs that ask for the same
      resources) and return a handle at once; never blocks on the runs themselves.
    - ``wait(handles, timeout)``: the handles among ``handles`` that finished within ``timeout``
      seconds (None: until one does), each with one :class:`~sweeper.run.types.Outcome` per run of
      its batch, in any order, or with the exception that lost the whole batch (a dead worker or
      node). A run whose objective raised is an Outcome with status ``failed``, never an exception.
      An empty list means nothing finished in time. The engine never passes a handle again once
      it was reported or cancelled.
    - ``NotStarted``: the exception a lost batch carries when none of its runs began (queued behind
      a crash); the engine resubmits it without counting an attempt. Any other exception counts one.
    - ``cancel(handle)``: stop a batch at once; the engine forgets the handle and never waits on it
      again (its runs run again on resume). Harmless on a handle already reported or cancelled.
    - ``close()``: release what the backend started (workers, a local Ray); called once at the end.
    """

    slots: int
    depth: int

    def submit(self, runs: Sequence[Run]) -> Handle: ...

    def wait(self, handles: Collection[Handle], timeout: float | None) -> Done: ...

    def cancel(self, handle: Handle) -> None: ...

    def close(self) -> None: ...
