"""Where runs execute. A backend is ``submit``, ``wait`` and ``cancel`` over future-like handles.

The engine hands a backend batches of runs (one run, or several when runs are tiny) and gets back
one :class:`~sweeper.run.types.Outcome` per run, in any order, as soon as each batch finishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.backends.base import Backend, NotStarted

if TYPE_CHECKING:
    from sweeper.run.types import RunContext
    from sweeper.spec.experiment import Experiment

__all__ = ["BACKENDS", "Backend", "NotStarted", "make_backend"]

# The backends by name, with what each is for: the CLI's --backend choices and help derive from it.
BACKENDS: dict[str, str] = {
    "ray": "an embedded local Ray, or a running cluster with --address",
    "local": "in-process, one run at a time (debugging, tiny sweeps)",
}


def make_backend(
    name: str, spec: Experiment, ref: RunContext, *, address: str | None = None, connecting: Any = None
) -> Backend:
    """``connecting``: for ray, a ``sweeper.backends.ray.connect_soon`` future begun earlier."""
    if name not in BACKENDS:
        raise ValueError(f"backend {name!r} is unknown; use one of {', '.join(BACKENDS)}")
    if name == "local":
        from sweeper.backends.local import LocalBackend

        return LocalBackend(ref)
    from sweeper.backends.ray import RayBackend

    return RayBackend(spec, ref, address=address, connecting=connecting)
