"""The wire types between the driver and a worker: what to run (``Run`` in a ``RunContext``) and what
came back (``Outcome``), plus the rules that turn an objective's return value into metrics.

They sit apart from the code that executes runs so that the Python and command objectives, the trial
runtime and the backends share them without importing each other.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from sweeper.results.history import Report
    from sweeper.results.schema import Status
    from sweeper.spec.experiment import Command

from sweeper.errors import ObjectiveError

ERROR_CHARS = 4000  # the tail of a traceback kept in the table's error column


class Channel(Protocol):
    """A run's end of the report channel (``sweeper.engine.channel``: in-process, or a Ray actor)."""

    def send(
        self,
        rows: Sequence[Report],
        ask: tuple[int, int] | None = None,
        *,
        wait: bool = True,
        ended: tuple[int, int, str, float | None] | None = None,
    ) -> bool:
        """Deliver ``rows``; with ``ask`` = (trial, replicate), whether to prune that run."""
        ...


@dataclass(frozen=True, slots=True)
class RunContext:
    """Everything a worker needs to run a batch: the objective, where results go, the report channel,
    the declared inputs, the command and the timeout. Small and picklable: it travels with every task."""

    target: str  # module:function ("" for a command objective)
    root: str  # looked up first, so models.py next to the sweep file is found
    metrics: tuple[str, ...]  # declared metrics; the first is primary
    # The trial runtime's needs (sweeper.run.runtime); all optional, so plain sweeps carry nothing.
    folder: str | None = None  # the experiment's results folder: artifacts/ go under it
    channel: Channel | None = None  # where reports go; None: they travel with the outcome
    prune: bool = False  # whether should_prune() asks the channel at all
    inputs: tuple[tuple[str, str], ...] = ()  # declared components: (name, path) handed to runs
    command: Command | None = None  # run a program instead of a function
    timeout: float | None = None  # seconds a run may take, counted from its own start
    keep_output: bool = False  # a worker's run: its prints go to its artifacts (no screen sees them)
    # Results on object storage: runs put their artifacts under this URI themselves, wherever they run,
    # with the driver's storage variables (credentials, endpoint); never shown in a repr.
    results_uri: str | None = None
    storage_env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # The objective given as a function (a notebook's own): itself in this process, or pickled by
    # Ray's cloudpickle for workers, which unpickle it in load_objective (a module missing there is
    # then the run's clear error, not Ray's failure to start the task).
    function: Callable[..., Any] | bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Run:
    """One seeded replicate of a trial, as the scheduler places it."""

    trial: int
    replicate: int
    seed: int
    params: dict[str, Any]
    attempt: int = 1
    factor_seeds: tuple[tuple[str, int], ...] = ()  # (data_seed, ...) of seed factors, for kwargs


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker reports back for one run. ``fatal`` means the objective itself is unusable."""

    trial: int
    replicate: int
    status: Status
    metrics: dict[str, float]
    started: float
    ended: float
    node: str
    attempt: int
    error: str | None = None
    fatal: bool = False
    history: list[Any] | None = None  # reports that had no channel to the driver (sweeper.run.runtime)
    components: list[Any] | None = None  # output components the run logged
    undeclared: tuple[str, ...] = ()  # keys it returned that are not metrics: (not recorded)
    curve_lacks_primary: bool = False  # it reported steps, none with the primary metric

    def columns(self) -> dict[str, Any]:
        """How the run went, as the trial table's columns (the sweep's rows and a rerun's alike)."""
        return {
            "status": self.status,
            "started_at": int(self.started * 1e6),
            "ended_at": int(self.ended * 1e6),
            "duration_s": self.ended - self.started,
            "node": self.node,
            "attempt": self.attempt,
            "error": self.error,
        }


UNDECLARED_SHOWN = 8


class MetricError(ValueError):
    """One run's metric cannot be stored (an int beyond a float's range): that run fails, the sweep
    goes on, since other trials may return ordinary numbers."""


def _float(name: str, value: Any, target: str) -> float:
    try:
        return float(value)
    except OverflowError:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1  # str() refuses huge ints
        raise MetricError(
            f"objective {target}: returned {name}= a number of about {digits} digits, beyond the range of"
            " a float (about 1.8e308), so this run is recorded as failed"
            f"\n  fix: return {name} as a float (float('inf') for an unbounded value) or rescale it"
        ) from None


def to_metrics(value: Any, metrics: Sequence[str], target: str) -> dict[str, float]:
    """Normalise a return value to {metric: float}; a wrong kind of value is fatal for the sweep."""
    primary = metrics[0]
    if (single := number(value)) is not None:
        return {primary: _float(primary, single, target)}
    if isinstance(value, Mapping):
        out: dict[str, float] = {}
        for name in metrics:
            if name not in value:
                continue
            if (given := number(value[name])) is None:
                raise ObjectiveError(
                    f"objective {target}: returned {name}={value[name]!r:.80}, not a number"
                    f"\n  fix: return plain numbers (float(...)) for every metric{_reduce(value[name])}"
                )
            out[name] = _float(name, given, target)
        if primary not in out:
            raise ObjectiveError(
                f"objective {target}: returned {sorted(map(str, value))} without the"
                f" primary metric {primary!r}"
                f"\n  fix: include {primary!r} in the dict it returns"
            )
        return out
    raise ObjectiveError(
        f"objective {target}: returned {type(value).__name__} {value!r:.60}, not a number"
        f" or a dict of numbers\n  fix: return {primary} as a number, or a dict "
        f"{{{', '.join(repr(m) + ': ...' for m in metrics)}}}"
    )


def undeclared(value: Any, metrics: Sequence[str]) -> tuple[str, ...]:
    """The keys of a returned dict that no metric declares: dropped from the table, so the launch names
    them (a few, for the summary line) rather than lose them silently."""
    if not isinstance(value, Mapping):
        return ()
    return tuple(sorted({str(k) for k in value} - set(metrics)))[:UNDECLARED_SHOWN]


def number(value: Any) -> numbers.Real | None:
    """A metric as a plain number, or None: numbers, and the 0-d arrays and tensors (numpy, torch, jax)
    training code hands over (``loss`` as a tensor, ``(pred == y).mean()``), read as Optuna reads them."""
    if isinstance(value, numbers.Real):
        return None if isinstance(value, bool) else value
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        try:
            item = value.item()
        except Exception:
            return None
        return number(item) if isinstance(item, numbers.Real) else None
    return None


def _reduce(value: Any) -> str:
    shape = getattr(value, "shape", None)
    return f" (it has shape {tuple(shape)}: reduce it, e.g. float(x.mean()))" if shape else ""


def tail(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else "..." + text[-ERROR_CHARS:]


def pruned_metrics(value: Any, last: Mapping[str, float], metrics: Sequence[str]) -> dict[str, float]:
    """A pruned run's metrics: its last reported values, overridden by whatever numbers it returned."""
    out = {m: last[m] for m in metrics if m in last and math.isfinite(last[m])}
    if (single := number(value)) is not None:
        out[metrics[0]] = float(single)
    elif isinstance(value, Mapping):
        given = {m: number(value[m]) for m in metrics if m in value}
        out.update((m, float(v)) for m, v in given.items() if v is not None)
    return out
