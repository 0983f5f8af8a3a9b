"""Sampling and searching the variable space with Optuna's ask/tell, one in-memory study.

The engine asks for trials as slots free up and tells the aggregate of a trial's replicates once they
have all finished. Grid and brute force are enumerated here (Optuna's GridSampler is far too slow with
ask/tell) and handed to the study as enqueued trials. Random and QMC search skip the study: their
points come from :mod:`sweeper.search.points` (trial k from (seed, k)) and nothing is told, since nothing
learns from results; ``Searcher(fast=False)`` keeps Optuna's samplers for them.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.search import space
from sweeper.search.points import FAST_METHODS, PointStream

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.model import Experiment

ADAPTIVE = frozenset({"tpe", "cmaes", "nsga2"})


@dataclass(frozen=True, slots=True)
class Proposal:
    trial: int
    params: dict[str, Any]


def make_sampler(spec: Experiment) -> optuna.samplers.BaseSampler:
    import optuna

    method, seed = spec.search.method, spec.search.seed
    with warnings.catch_warnings():  # QMC and a few options are marked experimental; we pin Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if method == "tpe":
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if method == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if method == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, scramble=True, warn_independent_sampling=False)
        if method == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)  # random; grid/bruteforce enqueue their points


def directions(spec: Experiment) -> list[str]:
    """NSGA-II optimises every metric; the other methods optimise the primary one."""
    metrics = spec.metrics if spec.search.method == "nsga2" else spec.metrics[:1]
    return [m.direction for m in metrics]


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


class Searcher:
    """Hands out trials in id order and tells Optuna their results.

    In deterministic mode an adaptive method asks trial k only once trials 0..k-concurrency have been
    told, and tells them in trial order, so the study sees the same history whatever the cluster size
    or the order runs finish in.
    """

    def __init__(self, spec: Experiment, study: optuna.Study | None = None, *, fast: bool = True):
        self.spec = spec
        self.study = study or new_study(spec)
        method = spec.search.method
        self._points: Iterator[dict[str, Any]] | None = None
        if method in ("grid", "bruteforce"):
            self._points = self._enumerate()
        self.total = self._budget()
        self._next = 0  # lowest trial id that may still be free
        self._asked = 0  # trials handed out, plus those restored from a trial table
        self._used: set[int] = set()  # ids taken by a trial table (resume)
        self._point = 0  # index of the grid point self._points yields next
        self._pending: dict[int, optuna.Trial] = {}
        self._gated = spec.search.deterministic and method in ADAPTIVE
        self.adaptive = method in ADAPTIVE
        # Adaptive methods: at most this many trials asked and not yet told (the engine sets it
        # from its slots), so each ask sees nearly every result, as Optuna's n_jobs does.
        self.max_pending: int | None = None
        self._finished: dict[int, tuple[list[float] | None, str]] = {}
        self._told_upto = 0  # every trial below this id has been told (gated mode)
        self._told_before: set[int] = set()  # finished before a resume: count as told (gated mode)
        # Random and QMC points need no study: sampled straight from (seed, trial id), never told.
        self._stream: PointStream | None = None
        if method in FAST_METHODS and fast:
            self._stream = PointStream(spec.variables, method, spec.search.seed)

    def _enumerate(self) -> Iterator[dict[str, Any]]:
        points = space.grid(self.spec.variables)
        if self.spec.search.method == "bruteforce":
            shuffled = list(points)
            random.Random(self.spec.search.seed).shuffle(shuffled)
            return iter(shuffled)
        return points

    def _budget(self) -> int:
        trials = self.spec.search.trials
        if self._points is None:
            return int(trials)  # type: ignore[arg-type]  # the spec requires it for these methods
        n = space.grid_size(self.spec.variables)
        return min(n, trials) if trials else n

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
        if self.exhausted or not self._ready(k):
            return None
        if (
            self.adaptive
            and not self._gated
            and self.max_pending is not None
            and len(self._pending) >= self.max_pending
        ):
            return None
        if self._stream is not None:
            self._next += 1
            self._asked += 1
            return Proposal(k, self._stream.params(k))
        if self._points is not None:
            fixed = self._grid_point(k)
            self.study.enqueue_trial({k: v for k, v in fixed.items()}, skip_if_exists=False)
        elif isinstance(self.study.sampler, _random_sampler()):
            # Trial k's variables depend on (seed, k) only, so a resumed random sweep samples
            # exactly what an uninterrupted one would have.
            sampler: Any = self.study.sampler
            sampler._rng.rng.seed(_trial_seed(self.spec.search.seed, k))
        trial = self.study.ask()
        params = space.suggest(trial, self.spec.variables)
        self._pending[k] = trial
        self._next += 1
        self._asked += 1
        return Proposal(k, params)

    def _grid_point(self, k: int) -> dict[str, Any]:
        assert self._points is not None and k >= self._point  # ids are handed out in increasing order
        while self._point < k:
            next(self._points)
            self._point += 1
        self._point += 1
        return next(self._points)

    def restore(
        self,
        finished: Sequence[tuple[int, dict[str, Any], list[float] | None, str]],
        partial: Sequence[tuple[int, dict[str, Any]]],
    ) -> None:
        """Rebuild the study from a trial table: the table is the single source of truth.

        ``finished`` trials (id, params, aggregate values or None, status) are added to the study as
        they ended; ``partial`` trials (id, params) become pending again with the same params, so
        their missing replicates run and are told like any other trial. Their ids are not handed
        out again.
        """
        self._used.update(k for k, *_ in finished)
        self._used.update(k for k, _ in partial)
        self._asked = len(self._used)
        if self._stream is not None:  # random/QMC points come from (seed, id): no study to rebuild
            return
        import optuna

        TS = optuna.trial.TrialState
        state = {"complete": TS.COMPLETE, "pruned": TS.PRUNED, "fail": TS.FAIL}
        for k, params, values, status in sorted(finished, key=lambda t: t[0]):
            dists = space.distributions(self.spec.variables, params)
            sampled = {name: params[name] for name in dists}
            ok = status == "complete" and values is not None and all(map(math.isfinite, values))
            # non-finite aggregates are told as failed, as _tell does for a live trial
            st = state["complete"] if ok else state["pruned"] if status == "pruned" else state["fail"]
            vals = values if ok else None
            self.study.add_trial(
                optuna.trial.create_trial(
                    params=sampled,
                    distributions=dists,
                    state=st,
                    value=vals[0] if vals is not None and len(vals) == 1 else None,
                    values=vals if vals is not None and len(vals) > 1 else None,
                )
            )
            self._told_before.add(k)
        for k, params in sorted(partial, key=lambda t: t[0]):
            self.study.enqueue_trial(params, skip_if_exists=False)
            trial = self.study.ask()
            space.suggest(trial, self.spec.variables)
            self._pending[k] = trial

    def _ready(self, k: int) -> bool:
        if not self._gated:
            return True
        need = k - self.spec.search.concurrency  # trials 0..need must be told first
        while self._told_upto <= need:
            if self._told_upto in self._told_before:
                self._told_upto += 1
                continue
            if self._told_upto not in self._finished:
                return False
            self._tell(self._told_upto, *self._finished.pop(self._told_upto))
            self._told_upto += 1
        return True

    def tell(self, trial: int, values: Sequence[float] | None, status: str) -> None:
        """Record a trial's aggregate (one value per direction) or its failure."""
        if self._gated:
            self._finished[trial] = (list(values) if values is not None else None, status)
        else:
            self._tell(trial, list(values) if values is not None else None, status)

    def report(self, trial: int, curve: dict[int, float]) -> None:
        """A trial's learning curve (step -> value over its replicates), given before it is told, so
        a pruned trial carries its last value into the study as Optuna expects."""
        ot = self._pending.get(trial)
        if ot is None or len(self.study.directions) > 1:
            return
        for step, value in sorted(curve.items()):
            ot.report(value, step)

    def _tell(self, trial: int, values: list[float] | None, status: str) -> None:
        import optuna

        if self._stream is not None:  # nothing learns from results; the table keeps them
            self._pending.pop(trial, None)
            return
        ot = self._pending.pop(trial)
        if status == "pruned":
            self.study.tell(ot, state=optuna.trial.TrialState.PRUNED)
        elif values is None or status != "complete" or not all(math.isfinite(v) for v in values):
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(ot, values if len(values) > 1 else values[0])


def _random_sampler() -> type:
    import optuna

    return optuna.samplers.RandomSampler


def _trial_seed(seed: int, trial: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence(seed, spawn_key=(1 << 20, trial)).generate_state(1)[0])
