"""Proposers: where trial k's variable set comes from, one small class per kind of method.

The seam (``Proposer``): ``propose(k)`` returns the variables of trial ``k`` (ids come in increasing
order, with gaps where a resumed table already holds a trial); ``tell(k, values, status)`` gives the
trial's aggregate (one value per direction) or its failure; ``restore(finished, partial)`` rebuilds
what a proposer learns from a trial table on resume. Only :class:`Asked` keeps an Optuna study:
enumerated and streamed points ignore results, so they need none.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sweeper.search import space
from sweeper.search.methods import METHODS
from sweeper.search.points import PointStream

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.experiment import Experiment

# (trial id, params, aggregate values or None, status) of a trial a table holds as finished
Finished = tuple[int, dict[str, Any], list[float] | None, str]
Partial = tuple[int, dict[str, Any]]  # (trial id, params) of a trial with replicates left to run


class Proposer(Protocol):
    def propose(self, k: int) -> dict[str, Any]: ...

    def tell(self, k: int, values: list[float] | None, status: str) -> None: ...

    def restore(self, finished: Sequence[Finished], partial: Sequence[Partial]) -> None: ...


class Enumerated:
    """Grid point k is trial k: the grid in its stable order, or a seeded shuffle of it for brute
    force. Points are computed from k (:class:`sweeper.search.space.Grid`), so a capped subset of a
    huge space costs only the points it takes."""

    def __init__(self, spec: Experiment):
        self._grid = space.Grid(spec.variables)
        shuffled = spec.search.method == "bruteforce"
        self._order = space.Shuffle(self._grid.size, spec.search.seed) if shuffled else None

    def propose(self, k: int) -> dict[str, Any]:
        return self._grid.point(self._order(k) if self._order is not None else k)

    def tell(self, k: int, values: list[float] | None, status: str) -> None:
        """Nothing learns from results; the trial table keeps them."""

    def restore(self, finished: Sequence[Finished], partial: Sequence[Partial]) -> None:
        """Point k depends on k alone: nothing to rebuild."""


class Streamed:
    """Random and QMC points addressed by (seed, k) (:mod:`sweeper.search.points`)."""

    def __init__(self, spec: Experiment):
        self._stream = PointStream(spec.variables, spec.search.method, spec.search.seed)

    def propose(self, k: int) -> dict[str, Any]:
        return self._stream.params(k)

    def tell(self, k: int, values: list[float] | None, status: str) -> None:
        """Nothing learns from results; the trial table keeps them."""

    def restore(self, finished: Sequence[Finished], partial: Sequence[Partial]) -> None:
        """Point k depends on (seed, k) alone: nothing to rebuild."""


class Asked:
    """Optuna's ask/tell on one in-memory study, for the methods that learn from results."""

    def __init__(self, spec: Experiment, study: optuna.Study | None = None):
        self.spec = spec
        self.study = study or new_study(spec)
        self.pending: dict[int, optuna.Trial] = {}  # asked, not yet told

    def propose(self, k: int) -> dict[str, Any]:
        trial = self.study.ask()
        self.pending[k] = trial
        return space.suggest(trial, self.spec.variables)

    def tell(self, k: int, values: list[float] | None, status: str) -> None:
        import optuna

        ot = self.pending.pop(k)
        if status == "pruned":
            self.study.tell(ot, state=optuna.trial.TrialState.PRUNED)
        elif values is None or status != "complete" or not all(math.isfinite(v) for v in values):
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(ot, values if len(values) > 1 else values[0])

    def report(self, k: int, curve: dict[int, float]) -> None:
        """A trial's learning curve before it is told, so a pruned trial carries its last value."""
        ot = self.pending.get(k)
        if ot is None or len(self.study.directions) > 1:
            return
        for step, value in sorted(curve.items()):
            ot.report(value, step)

    def restore(self, finished: Sequence[Finished], partial: Sequence[Partial]) -> None:
        """Finished trials enter the study as they ended; partial ones are asked again with the same
        params, so their missing replicates are told like any other trial."""
        import optuna

        ts = optuna.trial.TrialState
        for _, params, values, status in sorted(finished, key=lambda t: t[0]):
            dists = space.distributions(self.spec.variables, params)
            ok = status == "complete" and values is not None and all(map(math.isfinite, values))
            # non-finite aggregates are told as failed, as tell() does for a live trial
            state = ts.COMPLETE if ok else ts.PRUNED if status == "pruned" else ts.FAIL
            vals = values if ok else None
            self.study.add_trial(
                optuna.trial.create_trial(
                    params={name: params[name] for name in dists},
                    distributions=dists,
                    state=state,
                    value=vals[0] if vals is not None and len(vals) == 1 else None,
                    values=vals if vals is not None and len(vals) > 1 else None,
                )
            )
        for k, params in sorted(partial, key=lambda t: t[0]):
            self.study.enqueue_trial(params, skip_if_exists=False)
            self.propose(k)


def make_proposer(spec: Experiment, study: optuna.Study | None = None) -> Proposer:
    kind = METHODS[spec.search.method].proposer
    if kind == "enumerated":
        return Enumerated(spec)
    if kind == "streamed":
        return Streamed(spec)
    return Asked(spec, study)


def directions(spec: Experiment) -> list[str]:
    """NSGA-II optimises every metric; the other methods optimise the primary one."""
    return [m.direction for m in told_metrics(spec)]


def told_metrics(spec: Experiment) -> tuple[Any, ...]:
    """The metrics a trial's aggregate holds, in order: what the search is told and resume restores."""
    return tuple(spec.metrics if METHODS[spec.search.method].multi_objective else spec.metrics[:1])


def make_sampler(spec: Experiment) -> optuna.samplers.BaseSampler:
    import optuna

    method, seed = spec.search.method, spec.search.seed
    with warnings.catch_warnings():  # a few options are marked experimental; we pin Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if method == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if method == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if method == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"method {method!r} asks no Optuna sampler (see sweeper.search.methods)")


def new_study(spec: Experiment) -> optuna.Study:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dirs: list[Any] = directions(spec)
    if len(dirs) > 1:
        return optuna.create_study(
            study_name=f"sweeper-{spec.name}", sampler=make_sampler(spec), directions=dirs
        )
    return optuna.create_study(
        study_name=f"sweeper-{spec.name}", sampler=make_sampler(spec), direction=dirs[0]
    )
