"""Does a small neural network beat logistic regression on handwritten digits?

Real models on a real data set that ships inside scikit-learn (no download): 8x8 digit images,
1,797 samples. ``seed`` picks the train/test split and the models' random state, so replicate r of
every trial sees the same split and the arms can be compared pair by pair.
"""

from __future__ import annotations

import time
import warnings


def train(
    model: str, seed: int, C: float = 1.0, hidden: int = 64, alpha: float = 1e-4, test_size: float = 0.3
) -> dict[str, float]:
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=seed, stratify=y
    )
    if model == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=300, random_state=seed)
    else:
        clf = LogisticRegression(C=C, max_iter=500)
    pipe = make_pipeline(StandardScaler(), clf)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(x_train, y_train)
    return {"accuracy": float(pipe.score(x_test, y_test)), "train_seconds": time.perf_counter() - started}
