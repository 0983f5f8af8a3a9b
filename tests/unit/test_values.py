"""One definition of a trial's value and of the best trial, shared by every view of a results folder.

A trial's value is the mean of its primary metric over its complete replicates, and only a finite
mean counts (what the engine tells Optuna). ``sweeper status``, ``launch --wait``'s follow line, the
API's ``best``, resume and the engine's own progress line must all name the same best trial.
"""

from __future__ import annotations

import math

from sweeper import load, load_spec
from sweeper.analysis.best import best_vs_rest
from sweeper.results.status import experiment_status
from sweeper.results.values import best_trial, trial_means, trial_value, trial_values
from sweeper.submit.follow import table_stats
from tests.results_fixture import write_results

SPEC = {
    "experiment": "inf",
    "objective": "objectives:quadratic",
    "metrics": [{"loss": "minimize"}],
    "variables": {"x": {"float": [0.0, 1.0]}},
    "search": {"method": "random", "trials": 3, "seed": 0},
    "replicates": 2,
}


def rows(values: dict[int, list[float]]) -> list[dict]:
    return [
        {"trial": t, "replicate": r, "x": t / 10, "loss": v}
        for t, vs in values.items()
        for r, v in enumerate(vs)
    ]


def test_follow_and_status_name_the_same_best_trial_with_an_infinite_metric(tmp_path):
    # trial 1's mean is -inf: Optuna was told it failed, so it cannot be the best of a minimisation
    folder = write_results(tmp_path / "inf", SPEC, rows({0: [0.5, 0.7], 1: [-math.inf, 0.1], 2: [0.3, 0.2]}))
    spec = load_spec(SPEC)
    status = experiment_status(folder)
    follow = table_stats(folder, spec, 3)
    assert status.best is not None and status.best["trial"] == 2
    assert (follow.best_trial, follow.best_value) == (2, 0.25)


def test_a_trial_has_a_value_only_when_its_mean_is_finite():
    assert trial_value([1.0, 2.0]) == 1.5
    assert trial_value([]) is None
    assert trial_value([1.0, math.inf]) is None and trial_value([1.0, math.nan]) is None
    assert trial_values([[1.0, 4.0], [3.0, 8.0]]) == [2.0, 6.0] and trial_values([]) is None


def test_every_view_names_the_same_best_trial(tmp_path):
    # maximize: +inf and a NaN replicate are not values; trial 3 ties trial 2 with more replicates
    spec = {**SPEC, "metrics": [{"loss": "maximize"}], "replicates": 3}
    table = {0: [0.5, 0.7], 1: [math.inf, 0.1], 2: [0.9, 0.9], 3: [0.9, 0.9, 0.9], 4: [5.0, math.nan]}
    folder = write_results(tmp_path / "max", spec, rows(table))
    experiment = load_spec(spec)
    df = load(folder)
    assert best_trial(df, experiment)["trial"] == 3
    assert experiment_status(folder).best["trial"] == 3
    assert table_stats(folder, experiment, 5).best_trial == 3
    assert best_vs_rest(df, experiment)[0] == 3
    assert list(trial_means(df, "loss").index) == [0, 2, 3]


def test_best_of_breaks_ties_by_replicates_then_id_on_many_trials():
    # the vectorised best_of must keep the definition: best mean, then more replicates, then lower id
    import numpy as np
    import pandas as pd

    from sweeper.results.values import best_of

    rng = np.random.default_rng(5)
    for _ in range(200):
        k = int(rng.integers(1, 40))
        means = pd.DataFrame(
            {"mean": rng.integers(0, 4, k).astype(float), "n": rng.integers(1, 4, k)},
            index=pd.Index(rng.permutation(1000)[:k], name="trial"),
        )
        for direction, sign in (("maximize", -1.0), ("minimize", 1.0)):
            want = min(means.index, key=lambda t: (sign * means.at[t, "mean"], -means.at[t, "n"], t))
            assert best_of(means, direction) == want
