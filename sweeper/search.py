"""Sampling and searching the variable space with Optuna's ask/tell, one in-memory study.

The engine asks for trials as slots free up and tells the aggregate of a trial's replicates once they
have all finished. Grid and brute force are enumerated here (Optuna's GridSampler is far too slow with
ask/tell) and handed to the study as enqueued trials, so every method leaves the same study behind.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper import space

if TYPE_CHECKING:
    import optuna

    from sweeper.spec import Experiment

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
    dirs = directions(spec)
    return optuna.create_study(
        study_name=f"sweeper-{spec.name}", sampler=make_sampler(spec),
        directions=dirs if len(dirs) > 1 else None, direction=dirs[0] if len(dirs) == 1 else None,
    )


class Searcher:
    """Hands out trials in id order and tells Optuna their results.

    In deterministic mode an adaptive method asks trial k only once trials 0..k-concurrency have been
    told, and tells them in trial order, so the study sees the same history whatever the cluster size
    or the order runs finish in.
    """

    def __init__(self, spec: Experiment, study: optuna.Study | None = None):
        self.spec = spec
        self.study = study or new_study(spec)
        method = spec.search.method
        self._points: Iterator[dict[str, Any]] | None = None
        if method in ("grid", "bruteforce"):
            self._points = self._enumerate()
        self.total = self._budget()
        self._next = 0
        self._pending: dict[int, optuna.Trial] = {}
        self._gated = spec.search.deterministic and method in ADAPTIVE
        self._finished: dict[int, tuple[list[float] | None, str]] = {}
        self._told_upto = 0  # every trial below this id has been told (gated mode)

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
        return self._next

    @property
    def exhausted(self) -> bool:
        return self._next >= self.total

    def ask(self) -> Proposal | None:
        """The next trial, or None when the budget is spent or (gated) earlier trials must finish."""
        if self.exhausted or not self._ready(self._next):
            return None
        if self._points is not None:
            fixed = next(self._points)
            self.study.enqueue_trial({k: v for k, v in fixed.items()}, skip_if_exists=False)
        trial = self.study.ask()
        params = space.suggest(trial, self.spec.variables)
        k = self._next
        self._pending[k] = trial
        self._next += 1
        return Proposal(k, params)

    def _ready(self, k: int) -> bool:
        if not self._gated:
            return True
        need = k - self.spec.search.concurrency  # trials 0..need must be told first
        while self._told_upto <= need:
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

    def _tell(self, trial: int, values: list[float] | None, status: str) -> None:
        import optuna

        ot = self._pending.pop(trial)
        if status == "pruned":
            self.study.tell(ot, state=optuna.trial.TrialState.PRUNED)
        elif values is None or status != "complete" or not all(math.isfinite(v) for v in values):
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(ot, values if len(values) > 1 else values[0])
