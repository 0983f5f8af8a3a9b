"""Components example: a shared preprocessing job and a model that uses its output.

``standardize`` runs once, before any trial (sweeper hands it the declared raw data and a folder to
write into); every trial then gets the path of its output as ``features``. Each run logs the
weights it fitted as a ``model`` component. See sweeps/components.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sweeper.run.runtime import Trial


def standardize(raw: str, out: str) -> str:
    data = np.loadtxt(raw, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    x = (x - x.mean(axis=0)) / x.std(axis=0)  # unscaled features make one learning rate fit none
    np.savez(Path(out) / "features.npz", x=x, y=y)
    return "features.npz"


def fit(lr: float, l2: float, seed: int, features: str, trial: Trial) -> dict[str, float]:
    data = np.load(features)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data["y"]))
    train, test = order[:240], order[240:]
    x = np.c_[data["x"], np.ones(len(data["y"]))]
    w = np.zeros(x.shape[1])
    for epoch in range(100):
        grad = 2 * x[train].T @ (x[train] @ w - data["y"][train]) / len(train) + 2 * l2 * w
        w -= lr * grad
        if epoch % 10 == 9:
            trial.report(epoch, test_mse=float(np.mean((x[test] @ w - data["y"][test]) ** 2)))
    np.save(trial.artifact_dir / "weights.npy", w)
    trial.log_component("weights", "weights.npy", kind="model")
    return {"test_mse": float(np.mean((x[test] @ w - data["y"][test]) ** 2))}
