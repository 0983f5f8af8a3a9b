"""Write results folders with chosen numbers, so analysis and report tests know the right answer.

``write_results(folder, spec, rows)`` writes ``experiment.json`` and the trial table exactly as the
engine does (through ``TableWriter`` and the contract schema); rows need only ``trial``,
``replicate``, the variables and the metrics, the rest is filled in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from sweeper.results.table import TableWriter, trial_schema, write_json
from sweeper.spec.model import load_spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def seed_of(replicate: int) -> int:
    """Replicate r shares its seed across trials (the paired design), as the engine does."""
    return 1000 + int(replicate)


def write_results(
    folder: Path,
    spec: Mapping[str, Any],
    rows: Iterable[Mapping[str, Any]],
    *,
    history: Iterable[Mapping[str, Any]] | None = None,
    status: str = "complete",
) -> Path:
    """Write a results folder; returns it. ``spec`` is a sweep dict (validated here)."""
    experiment = load_spec(spec, root=folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(
        folder / "experiment.json",
        {
            "name": experiment.name,
            "hypothesis": experiment.hypothesis,
            "spec": dict(spec),
            "root": ".",
            "versions": {"sweeper": "0.1.0"},
            "host": "testhost",
            "git_commit": None,
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
            "status": status,
        },
    )
    writer = TableWriter(folder / "trials", trial_schema(experiment), flush_rows=10**9, flush_s=1e9)
    full = []
    for i, row in enumerate(rows):
        start = T0 + timedelta(seconds=i)
        out = {
            "seed": seed_of(row["replicate"]),
            "status": "complete",
            "started_at": start,
            "ended_at": start + timedelta(seconds=1),
            "duration_s": 1.0,
            "node": "n0",
            "attempt": 0,
            "error": None,
        }
        out.update(row)
        full.append(out)
    writer.append(full)
    writer.close()
    if history is not None:
        _write_history(folder / "history", experiment, list(history))
    return folder


def _write_history(folder: Path, experiment: Any, rows: list[Mapping[str, Any]]) -> None:
    """The history table as sweeper.results.history writes it (attempt 0 unless a row says otherwise)."""
    from sweeper.results.history import history_schema

    metrics = [m.name for m in experiment.metrics]
    writer = TableWriter(folder, history_schema(metrics), flush_rows=10**9, flush_s=1e9, keys=())
    writer.append([{"attempt": 0, "time": T0 + timedelta(seconds=i), **row} for i, row in enumerate(rows)])
    writer.close()


def model_spec(
    *,
    replicates: int = 5,
    treatment: Any = "custom",
    arms: str = "best",
    models: tuple[str, ...] = ("resnet50", "custom"),
    extra_metric: bool = False,
) -> dict[str, Any]:
    """A hypothesis sweep: model x lr, accuracy (primary) and optionally seconds."""
    metrics: list[dict[str, str]] = [{"accuracy": "maximize"}]
    if extra_metric:
        metrics.append({"seconds": "minimize"})
    compare: dict[str, Any] = {"variable": "model", "baseline": "resnet50", "arms": arms}
    if treatment is not None:
        compare["treatment"] = treatment
    variables: dict[str, Any] = {
        "model": {"choice": list(models)},
        "lr": {"float": [1e-4, 1e-1], "log": True},
    }
    if "custom" in models:
        variables["depth"] = {"int": [2, 8], "when": {"model": "custom"}}
    return {
        "experiment": "models",
        "hypothesis": "The custom model reaches higher accuracy than ResNet50",
        "objective": "train:run",
        "metrics": metrics,
        "variables": variables,
        "search": {"method": "random", "trials": 10, "seed": 0},
        "replicates": replicates,
        "compare": compare,
    }


def model_rows(
    rng: np.random.Generator,
    *,
    effect: float,
    replicates: int = 5,
    lrs: tuple[float, ...] = (1e-3,),
    seed_sd: float = 0.02,
    noise_sd: float = 0.01,
    models: tuple[str, ...] = ("resnet50", "custom"),
    effects: Mapping[str, float] | None = None,
    extra_metric: bool = False,
) -> list[dict[str, Any]]:
    """Rows for ``model_spec``: accuracy = 0.8 + effect(model) + seed effect + noise.

    The seed effect is shared by every trial of a replicate (common random numbers), so a paired
    test sees only ``noise_sd``; ``effects`` gives a per-model effect, else custom gets ``effect``.
    """
    per_model = dict(effects) if effects is not None else {"resnet50": 0.0, "custom": effect}
    seed_effect = rng.normal(0, seed_sd, replicates)
    rows = []
    trial = 0
    for model in models:
        for lr in lrs:
            lr_effect = -0.01 * abs(np.log10(lr) + 3)
            for r in range(replicates):
                noise = rng.normal(0, noise_sd)
                acc = 0.8 + per_model.get(model, 0.0) + lr_effect + seed_effect[r] + noise
                row: dict[str, Any] = {
                    "trial": trial,
                    "replicate": r,
                    "model": model,
                    "lr": lr,
                    "depth": 4 if model == "custom" else None,
                    "accuracy": acc,
                }
                if extra_metric:
                    row["seconds"] = 10 + 5 * (model == "custom") + 100 * acc + rng.normal(0, 1)
                rows.append(row)
            trial += 1
    return rows
