"""The searcher: trial ids, the budget and the deterministic gate around one proposer.

The engine asks for trials as slots free up and tells the aggregate of a trial's replicates once
they have all finished. Where the variables come from is the proposer's business
(:mod:`sweeper.search.proposers`: enumerated grid/brute force, streamed random/QMC points, Optuna
ask/tell); the searcher hands out ids in increasing order, counts the budget and, in deterministic
mode, holds asks and tells back (:class:`Gate`) so an adaptive study sees the same history on any
cluster size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.search import space
from sweeper.search.methods import METHODS, is_enumerated
from sweeper.search.proposers import Asked, Finished, Partial, directions, make_proposer, told_metrics

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.experiment import Experiment

__all__ = ["Gate", "Proposal", "Searcher", "budget", "directions", "told_metrics"]


@dataclass(frozen=True, slots=True)
class Proposal:
    trial: int
    params: dict[str, Any]


def budget(spec: Experiment) -> int:
    """How many trials the sweep runs: ``trials``, or the grid's size when that is smaller (or unset).

    Cheap and study-free, so views that only count (status, follow) never build a sampler."""
    trials = spec.search.trials
    if not is_enumerated(spec.search.method):
        return int(trials)  # type: ignore[arg-type]  # the spec requires it for these methods
    n = space.grid_size(spec.variables)
    return min(n, trials) if trials else n


class Gate:
    """Deterministic mode: trial k is asked only once trials 0..k-concurrency have been told, and
    tells reach the proposer in trial order, whatever order runs finish in."""

    def __init__(self, concurrency: int, tell: Callable[[int, list[float] | None, str], None]):
        self.concurrency, self._tell = concurrency, tell
        self._finished: dict[int, tuple[list[float] | None, str]] = {}
        self._told_upto = 0  # every trial below this id has been told
        self.told_before: set[int] = set()  # finished before a resume: count as told

    def ready(self, k: int) -> bool:
        need = k - self.concurrency  # trials 0..need must be told first
        while self._told_upto <= need:
            if self._told_upto in self.told_before:
                self._told_upto += 1
                continue
            if self._told_upto not in self._finished:
                return False
            self._tell(self._told_upto, *self._finished.pop(self._told_upto))
            self._told_upto += 1
        return True

    def tell(self, k: int, values: list[float] | None, status: str) -> None:
        self._finished[k] = (values, status)


class Searcher:
    """Hands out trials in id order and tells the proposer their results."""

    def __init__(self, spec: Experiment, study: optuna.Study | None = None):
        self.spec = spec
        self.total = budget(spec)
        self.adaptive = METHODS[spec.search.method].proposer == "asked"
        self._proposer = make_proposer(spec, study)
        self._gate = (
            Gate(spec.search.concurrency, self._proposer.tell)
            if (spec.search.deterministic and self.adaptive)
            else None
        )
        self._next = 0  # lowest trial id that may still be free
        self._asked = 0  # trials handed out, plus those restored from a trial table
        self._used: set[int] = set()  # ids taken by a trial table (resume)
        # Adaptive methods: at most this many trials asked and not yet told (the engine sets it
        # from its slots), so each ask sees nearly every result, as Optuna's n_jobs does.
        self.max_pending: int | None = None

    @property
    def study(self) -> optuna.Study | None:
        """The Optuna study of an adaptive method (None for methods that learn nothing)."""
        return self._proposer.study if isinstance(self._proposer, Asked) else None

    @property
    def asked(self) -> int:
        return self._asked

    @property
    def exhausted(self) -> bool:
        return self._asked >= self.total

    def ask(self) -> Proposal | None:
        """The next trial, or None when the budget is spent or (gated) earlier trials must finish.

        Trial ids are the lowest not yet taken, so a resumed sweep fills the ids of trials lost
        before any replicate finished; grid point k always gets trial id k.
        """
        while self._next in self._used:
            self._next += 1
        k = self._next
        if self.exhausted or (self._gate is not None and not self._gate.ready(k)):
            return None
        proposer = self._proposer
        if (
            self._gate is None
            and isinstance(proposer, Asked)
            and self.max_pending is not None
            and len(proposer.pending) >= self.max_pending
        ):
            return None
        params = proposer.propose(k)
        self._next += 1
        self._asked += 1
        return Proposal(k, params)

    def restore(self, finished: Sequence[Finished], partial: Sequence[Partial]) -> None:
        """Rebuild from a trial table: the table is the single source of truth.

        ``finished`` trials (id, params, aggregate values or None, status) are as they ended;
        ``partial`` trials (id, params) become pending again with the same params, so their missing
        replicates run and are told like any other trial. Their ids are not handed out again.
        """
        # a restore's finished trials carry their ids as an array: read a million without building
        # each trial's tuple (sweeper.engine.resume.FinishedTrials)
        ids = getattr(finished, "trials", None)
        done = ids.tolist() if ids is not None else [k for k, *_ in finished]
        self._used.update(done)
        self._used.update(k for k, _ in partial)
        self._asked = len(self._used)
        self._proposer.restore(finished, partial)
        if self._gate is not None:
            self._gate.told_before.update(done)

    def tell(self, trial: int, values: Sequence[float] | None, status: str) -> None:
        """Record a trial's aggregate (one value per direction) or its failure."""
        told = list(values) if values is not None else None
        (self._gate or self._proposer).tell(trial, told, status)

    def report(self, trial: int, curve: dict[int, float]) -> None:
        """A trial's learning curve (step -> value over its replicates), given before it is told, so
        a pruned trial carries its last value into the study as Optuna expects."""
        if isinstance(self._proposer, Asked):
            self._proposer.report(trial, curve)
