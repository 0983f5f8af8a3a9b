"""A learning-curve objective: gradient descent on y = 2.5 x - 1, reporting the test error every epoch.

Learning rates far too small barely move and ones far too large diverge: both are obvious after a
few epochs, so a pruner can stop them long before their last epoch. ``trial`` is sweeper's runtime
(it is passed because the function has a ``trial`` parameter).
"""

from __future__ import annotations

import numpy as np

import sweeper

TRUE_SLOPE, TRUE_INTERCEPT = 2.5, -1.0
WORST = 1e6  # a diverged model's error, kept finite so curves stay drawable


def train(lr: float, seed: int, trial: sweeper.run.runtime.Trial, epochs: int = 20) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=640)
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + rng.normal(0, 0.1, size=x.size)
    xt, yt, xs, ys = x[:512], y[:512], x[512:], y[512:]
    w = np.zeros(2)
    test_mse = WORST
    for epoch in range(epochs):  # one full-batch gradient step per epoch
        err = w[0] * xt + w[1] - yt
        w = w - lr * 2 * np.array([np.mean(err * xt), np.mean(err)])
        with np.errstate(over="ignore", invalid="ignore"):
            test_mse = float(np.mean((w[0] * xs + w[1] - ys) ** 2))
        if not np.isfinite(test_mse) or test_mse > WORST:
            test_mse = WORST
        trial.report(epoch, test_mse=test_mse, slope=float(w[0]) if np.isfinite(w[0]) else WORST)
        if test_mse >= WORST:
            break  # diverged: nothing more to learn
        if trial.should_prune():
            raise sweeper.TrialPruned()  # recorded as pruned, with the last reported test_mse
    return {"test_mse": test_mse}
