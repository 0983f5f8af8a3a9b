"""A numpy-only objective with a known optimum: recover the true line y = 2.5 x - 1 from noisy data.

Ground truth first, as the seed notes advise: a correct sweep must find slope≈2.5, intercept≈-1, and
gradient descent must prefer moderate learning rates. ``seed`` draws the noise and the data split, so
replicates differ the way reruns of a real experiment do.
"""

from __future__ import annotations

import numpy as np

TRUE_SLOPE, TRUE_INTERCEPT = 2.5, -1.0


def fit(lr: float, steps: int, optimizer: str, seed: int, momentum: float = 0.0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=256)
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + rng.normal(0, 0.5, size=x.size)
    train, test = slice(0, 192), slice(192, None)
    w = np.zeros(2)
    velocity = np.zeros(2)
    for _ in range(steps):
        err = w[0] * x[train] + w[1] - y[train]
        grad = np.array([np.mean(err * x[train]), np.mean(err)]) * 2
        if optimizer == "momentum":
            velocity = momentum * velocity - lr * grad
            w = w + velocity
        else:
            w = w - lr * grad
        if not np.all(np.isfinite(w)):
            break
    mse = float(np.mean((w[0] * x[test] + w[1] - y[test]) ** 2))
    return {
        "test_mse": mse if np.isfinite(mse) else 1e9,
        "slope_error": float(abs(w[0] - TRUE_SLOPE)) if np.isfinite(w[0]) else 1e9,
    }
