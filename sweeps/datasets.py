"""Three classifiers on four of scikit-learn's bundled data sets (no download): which is better, where,
and at what cost? ``seed`` picks the stratified train/test split and the models' random state, so
replicate r of every trial sees the same split and the arms are compared pair by pair.
"""

from __future__ import annotations

import time
import warnings

LOADERS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


def train(model: str, dataset: str, seed: int, trees: int = 50, k: int = 5) -> dict[str, float]:
    import sklearn.datasets
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    x, y = getattr(sklearn.datasets, LOADERS[dataset])(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    if model == "rf":
        clf = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=1)
    elif model == "knn":
        clf = KNeighborsClassifier(n_neighbors=k)
    else:
        clf = LogisticRegression(max_iter=300)
    pipe = make_pipeline(StandardScaler(), clf)
    started = time.perf_counter()
    # one BLAS thread, as the run has one CPU: on a shared 2-core machine logistic regression's threaded
    # BLAS spun 30x longer than it computed (1.2 s of CPU for a 0.04 s fit on digits)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(x_train, y_train)
    fit = time.perf_counter() - started
    return {"accuracy": float(pipe.score(x_test, y_test)), "fit_seconds": fit}
