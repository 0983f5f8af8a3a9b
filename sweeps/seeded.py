"""A numpy-only ridge fit whose result moves with two perturbations: the data split and the start.

``data_seed`` draws which 300 of 400 points train the model (the rest test it); ``init_seed`` draws the
starting weights of a short gradient descent. A sweep with seed factors (sweeps/factors.yaml) passes
both; one without (sweeps/racing.yaml) passes only ``seed``, which then draws both.
"""

from __future__ import annotations

import numpy as np

TRUE_W = np.linspace(-2.0, 2.0, 10)


def ridge(
    lr: float, l2: float, seed: int, data_seed: int | None = None, init_seed: int | None = None
) -> float:
    """Test mean squared error after 40 gradient steps on a fixed data set, split and started as seeded."""
    data = np.random.default_rng(0)  # one fixed data set: the split, not the data, is perturbed
    x = data.normal(size=(400, 10))
    y = x @ TRUE_W + data.normal(0.0, 2.0, size=400)
    order = np.random.default_rng(seed if data_seed is None else data_seed).permutation(400)
    train, test = order[:300], order[300:]
    w = np.random.default_rng([seed, 1] if init_seed is None else init_seed).normal(0.0, 1.0, size=10)
    for _ in range(40):
        grad = 2 * x[train].T @ (x[train] @ w - y[train]) / len(train) + 2 * l2 * w
        w = w - lr * grad
        if not np.all(np.isfinite(w)):
            return float("inf")
    return float(np.mean((x[test] @ w - y[test]) ** 2))
