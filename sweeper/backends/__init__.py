"""Where runs execute. A backend is ``submit``, ``wait`` and ``cancel`` over future-like handles.

The engine hands a backend batches of runs (one run, or several when runs are tiny) and gets back
one :class:`~sweeper.run.objective.Outcome` per run, in any order, as soon as each batch finishes.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sweeper.run.objective import ObjectiveRef, Outcome, Run
    from sweeper.spec.model import Experiment

BACKENDS = ("ray", "local")


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

    def wait(self, handles: Collection[Any], timeout: float | None
             ) -> list[tuple[Any, list[Outcome] | BaseException]]: ...

    def cancel(self, handle: Any) -> None: ...

    def close(self) -> None: ...


def make_backend(name: str, spec: Experiment, ref: ObjectiveRef, *, address: str | None = None) -> Backend:
    if name == "local":
        from sweeper.backends.local import LocalBackend

        return LocalBackend(ref)
    from sweeper.backends.ray import RayBackend

    return RayBackend(spec, ref, address=address)
