"""Early stopping with Optuna's pruners, decided per trial over its replicates.

The :class:`Judge` keeps a private Optuna study that mirrors the sweep: mirror trial number k is
sweeper trial k (so Hyperband's brackets, which hash the study name and trial number, are the same on
every rerun), its intermediate value at step s is the mean of the primary metric over the replicates
that have reported step s so far, and it is finished when the driver says the trial ended. Once the
pruner says a trial should stop, every replicate of it is told so. The judge lives where runs can ask
it cheaply (in-process, or in the monitor actor on Ray); the driver's study receives the same curves
when each trial is told.
"""

from __future__ import annotations

import copy
import math
import warnings
from typing import TYPE_CHECKING, Any

from sweeper.errors import SpecError
from sweeper.spec.experiment import PRUNERS

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.experiment import Experiment


def make_pruner(method: str, options: dict[str, Any]) -> optuna.pruners.BasePruner:
    """The Optuna pruner for ``method``; raises ValueError with Optuna's words on bad options."""
    import optuna

    classes = {
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "wilcoxon": optuna.pruners.WilcoxonPruner,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return classes[method](**options)  # type: ignore[no-any-return]
        except TypeError as exc:
            raise ValueError(str(exc)) from None


def check_pruner(spec: Experiment) -> None:
    """Build the sweep's pruner once before anything runs, so options Optuna refuses (a percentile of
    150) stop the launch with the file and the field rather than a traceback from the first run."""
    if spec.pruner is None:
        return
    method, options = spec.pruner.method, dict(spec.pruner.options)
    try:
        make_pruner(method, options)
    except ValueError as exc:
        raise SpecError(
            str(exc),
            source=spec.source,
            field="pruner",
            fix=f"fix the option; {method} takes {', '.join(PRUNERS[method])}",
        ) from None


def judge_args(spec: Any) -> dict[str, Any] | None:
    """What a :class:`Judge` is built from (plain data, so it can travel to a Ray actor)."""
    if spec.pruner is None:
        return None
    return {
        "study_name": f"sweeper-{spec.name}",
        "metric": spec.primary.name,
        "direction": spec.primary.direction,
        "method": spec.pruner.method,
        "options": dict(spec.pruner.options),
        "replicates": spec.replicates,
    }


class Judge:
    def __init__(
        self,
        study_name: str,
        metric: str,
        direction: str,
        method: str,
        options: dict[str, Any],
        replicates: int = 1,
    ):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.metric, self.replicates = metric, replicates
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=self.storage,
            study_name=study_name,
            direction=direction,  # type: ignore[arg-type]
            sampler=optuna.samplers.RandomSampler(seed=0),
            pruner=make_pruner(method, options),
        )
        self._ids: list[int] = []  # sweeper trial id -> mirror storage trial id
        self._values: dict[int, dict[int, dict[int, float]]] = {}  # trial -> step -> replicate -> v
        self._at: dict[tuple[int, int], int] = {}  # (trial, replicate) -> its latest step
        self._pruned: set[int] = set()
        self._closed: set[int] = set()
        self._ended: dict[int, dict[int, tuple[str, float | None]]] = {}  # trial -> replicate -> end
        self._curves: dict[int, dict[int, float]] = {}  # closed here, not yet asked for by the driver

    def _id(self, trial: int) -> int:
        while len(self._ids) <= trial:
            self._ids.append(self.study.ask()._trial_id)
        return self._ids[trial]

    def report(self, trial: int, replicate: int, step: int, metrics: dict[str, float]) -> None:
        value = metrics.get(self.metric)
        if value is None or trial in self._closed:
            return
        per_step = self._values.setdefault(trial, {}).setdefault(step, {})
        per_step[replicate] = value
        key = (trial, replicate)
        self._at[key] = max(step, self._at.get(key, step))
        mean = math.fsum(per_step.values()) / len(per_step)
        self.storage.set_trial_intermediate_value(self._id(trial), step, mean)

    def should_prune(self, trial: int, replicate: int) -> bool:
        """Judged at the asking run's latest step: a replicate that lags behind a finished one is
        compared with other trials at its own step, not at the step the finished one reached."""
        if trial in self._pruned:
            return True
        at = self._at.get((trial, replicate))
        if trial in self._closed or at is None:
            return False
        frozen = self.storage.get_trial(self._id(trial))
        if frozen.last_step is not None and frozen.last_step > at:
            frozen = copy.copy(frozen)
            frozen.intermediate_values = {s: v for s, v in frozen.intermediate_values.items() if s <= at}
        with warnings.catch_warnings():  # e.g. Wilcoxon's notes about NaN curves
            warnings.simplefilter("ignore")
            prune = self.study.pruner.prune(self.study, frozen)
        if prune:
            self._pruned.add(trial)
        return bool(prune)

    def run_ended(self, trial: int, replicate: int, status: str, value: float | None) -> None:
        """A run that reported has ended: once all replicates have, the trial closes here at once,
        so the next decisions already count it (the driver learns of it only with its batch)."""
        ended = self._ended.setdefault(trial, {})
        ended[replicate] = (status, value)
        if len(ended) < self.replicates or trial in self._closed:
            return
        del self._ended[trial]
        statuses = [s for s, _ in ended.values()]
        values = [v for s, v in ended.values() if s == "complete" and v is not None]
        if "pruned" in statuses:
            self._curves[trial] = self.finish(trial, "pruned", None)
        elif values:  # as the engine tells it: the mean over the replicates that completed
            self._curves[trial] = self.finish(trial, "complete", math.fsum(values) / len(values))
        else:
            self._curves[trial] = self.finish(trial, "failed", None)

    def take_curves(self) -> dict[int, dict[int, float]]:
        curves, self._curves = self._curves, {}
        return curves

    def replay(self, trials: list[tuple[int, dict[int, float], str, float | None]]) -> None:
        """Trials finished by an earlier launch (a resume): (trial, curve, status, value), so the
        pruner keeps comparing with them."""
        for trial, curve, status, value in sorted(trials, key=lambda t: t[0]):
            if trial in self._closed:
                continue
            tid = self._id(trial)
            for step, v in curve.items():
                self.storage.set_trial_intermediate_value(tid, step, v)
            self.finish(trial, status, value)

    def finish(self, trial: int, status: str, value: float | None) -> dict[int, float]:
        """Close the mirror trial; returns its curve (step -> mean over replicates)."""
        import optuna

        if trial in self._closed:
            return self._curves.pop(trial, {})
        self._ended.pop(trial, None)
        curve = {
            step: math.fsum(v.values()) / len(v) for step, v in sorted(self._values.pop(trial, {}).items())
        }
        self._id(trial)  # mirror trial number == sweeper trial id
        self._closed.add(trial)
        self._pruned.discard(trial)
        for key in [k for k in self._at if k[0] == trial]:
            del self._at[key]
        state = optuna.trial.TrialState
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if status == "complete" and value is not None and math.isfinite(value):
                self.study.tell(trial, value)
            elif status == "pruned":
                self.study.tell(trial, state=state.PRUNED)
            else:
                self.study.tell(trial, state=state.FAIL)
        return curve
