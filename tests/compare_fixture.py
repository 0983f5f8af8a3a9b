"""Seeded synthetic sweeps with a known truth, for the verdict across settings, cost and confirmation.

``sweep_frame`` builds a trial table as the engine writes it: arms (``model``) in settings
(``dataset``), each arm with some trials (a variable ``h`` that does nothing), replicates sharing
seeds, an accuracy with a chosen true effect per dataset and a cost metric with a chosen ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from sweeper.spec.experiment import Confirm, Experiment
from sweeper.spec.model import load_spec


def compare_spec(
    datasets: Sequence[str],
    models: Sequence[str] = ("new", "old"),
    *,
    treatment: Any = "new",
    replicates: int = 5,
    **compare: Any,
) -> Experiment:
    spec = load_spec(
        {
            "experiment": "synthetic",
            "objective": "tests.objectives:noop",
            "metrics": [{"acc": "maximize"}, {"fit_seconds": "minimize"}],
            "variables": {
                "model": {"choice": list(models)},
                "dataset": {"choice": list(datasets)},
                "h": {"int": [0, 1000]},
            },
            "search": {"method": "random", "trials": 10},
            "replicates": replicates,
            "compare": {"variable": "model", "treatment": treatment, "baseline": "old", "metric": "acc"},
        }
    )
    assert spec.compare is not None
    extra: dict[str, Any] = dict(compare)
    if isinstance(extra.get("confirm"), int):
        extra["confirm"] = Confirm(extra["confirm"])
    return replace(spec, compare=replace(spec.compare, **extra))


def sweep_frame(
    rng: np.random.Generator,
    effects: Mapping[str, float],
    *,
    replicates: int = 5,
    trials: Mapping[str, int] | None = None,
    arms: Mapping[str, float] | None = None,
    cost_ratio: float = 1.0,
    sd: float = 0.01,
    scale: Mapping[str, float] | None = None,
    seeds: Sequence[int] | None = None,
    stage: str = "search",
    first_trial: int = 0,
    configs: Sequence[tuple[str, str, int]] | None = None,
) -> pd.DataFrame:
    """One row per replicate. ``effects[dataset]`` is new - old in true mean accuracy (``arms`` gives
    the true offset of each model instead, for more than two); ``configs`` fixes (model, dataset, h)
    of each trial (a confirmation stage), else ``trials[model]`` trials per model and dataset."""
    arms = dict(arms) if arms is not None else {"new": 0.0, "old": 0.0}
    trials = dict(trials) if trials is not None else {m: 1 for m in arms}
    seeds = list(seeds) if seeds is not None else [1000 + r for r in range(replicates)]
    if configs is None:
        configs = [
            (m, d, int(rng.integers(0, 1000))) for d in effects for m in arms for _ in range(trials[m])
        ]
    rows = []
    shared = {d: rng.normal(0, sd, len(seeds)) for d in effects}  # the seed's effect, common to arms
    for i, (model, dataset, h) in enumerate(configs):
        base = 0.8 + arms[model] + (effects[dataset] if model == "new" else 0.0)
        k = (scale or {}).get(dataset, 1.0)
        acc = k * (base + shared[dataset] + rng.normal(0, sd, len(seeds)))
        cost = 0.01 * (cost_ratio if model == "new" else 1.0) * np.exp(rng.normal(0, 0.2, len(seeds)))
        for r, seed in enumerate(seeds):
            rows.append(
                {
                    "trial": first_trial + i,
                    "replicate": r,
                    "seed": seed,
                    "status": "complete",
                    "stage": stage,
                    "model": model,
                    "dataset": dataset,
                    "h": h,
                    "acc": acc[r],
                    "fit_seconds": cost[r],
                    "duration_s": cost[r] * 1.1,
                }
            )
    return pd.DataFrame(rows)


def confirm_frame(
    rng: np.random.Generator, spec: Experiment, search: pd.DataFrame, effects: Mapping[str, float], **kw: Any
) -> pd.DataFrame:
    """The confirmation stage the engine would run on ``search``: its chosen configurations on fresh
    seeds, with the same truth."""
    from sweeper.engine.confirm import choose
    from sweeper.search.seeds import confirm_seeds

    assert spec.compare is not None and spec.compare.confirm is not None
    picked = choose(spec, search)
    configs = [(p.params["model"], p.params["dataset"], p.params["h"]) for p in picked]
    seeds = confirm_seeds(spec.search.seed, spec.compare.confirm.replicates)
    frame = sweep_frame(
        rng, effects, configs=configs, seeds=seeds, stage="confirm", first_trial=picked[0].trial, **kw
    )
    return frame
