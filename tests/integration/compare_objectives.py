"""Objectives for the comparison tests: a known truth per model and dataset, seeded noise."""

from __future__ import annotations

import numpy as np


def no_effect(model: str, dataset: str, seed: int, h: int = 0) -> dict[str, float]:
    """No model is better anywhere; "big" takes 10x as long to fit."""
    rng = np.random.default_rng([seed, h, len(model), len(dataset)])
    shared = np.random.default_rng([seed, len(dataset)]).normal(0, 0.01)  # the seed's effect
    return {
        "acc": 0.8 + shared + float(rng.normal(0, 0.01)),
        "fit_seconds": 0.01 * (10 if model == "big" else 1) * float(np.exp(rng.normal(0, 0.1))),
    }
