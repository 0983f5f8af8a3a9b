"""The progress line and the summary's warnings, from the engine's counters."""

from __future__ import annotations

import time

import pandas as pd

from sweeper.engine.loop import Stats
from sweeper.engine.progress import line, metric_warnings, nonfinite_text, summary


def _stats(**kw: object) -> Stats:
    s = Stats(trials_total=10, replicates=2, trials_done=4, runs_done=8, started=time.time() - 4, **kw)  # type: ignore[arg-type]
    s.counts["complete"] = 8
    return s


def test_the_eta_shows_while_running_and_goes_once_the_sweep_stops() -> None:
    running = line(_stats(), "loss")
    assert "runs 8/20" in running and "ETA " in running
    stopping = line(_stats(stopping="stopping (Ctrl-C)"), "loss")
    assert "ETA" not in stopping and stopping.endswith(" | stopping (Ctrl-C)")


def test_nan_metrics_are_named_primary_first_and_what_they_do_is_said() -> None:
    text = nonfinite_text({"acc": 1, "loss": 3}, ["loss", "acc"])
    assert text == (
        "runs returned nan or inf: loss in 3 runs, acc in 1 run; their trials have no mean loss, rank last "
        "and count as failed for the search"
    )
    assert nonfinite_text({"acc": 2}, ["loss", "acc"]) == "runs returned nan or inf: acc in 2 runs"


def test_the_summary_names_undeclared_keys_once_each() -> None:
    s = _stats()
    s.undeclared.update({"n_params", "epochs"})
    table = pd.DataFrame({"trial": [0], "status": ["complete"], "loss": [1.0], "error": [None]})
    lines = summary(s, "x", table, None, "/r/x", ["loss"])
    (warning,) = [w for w in lines if w.startswith("warning: runs also returned")]
    assert warning.startswith("warning: runs also returned 'epochs', 'n_params', not declared in metrics:")
    assert warning.endswith("add them to metrics: (e.g. - epochs: maximize) to keep them")


def test_where_a_resume_starts_is_said_in_good_grammar() -> None:
    from sweeper.engine.plan import resume_words
    from sweeper.engine.resume import Partial, Restored

    one = Restored(partial={3: Partial(params={}, missing=[1])}, runs_done=5, trials_done=2)
    assert resume_words(one, False, "f.yaml") == (
        "5 runs done, 2 trials finished, 1 replicate of 1 unfinished trial to run first"
    )
    two = Restored(partial={3: Partial({}, [1]), 4: Partial({}, [0, 1])}, runs_done=5, trials_done=2)
    assert resume_words(two, False, "f.yaml").endswith("3 replicates of 2 unfinished trials to run first")
    done = Restored(partial={}, runs_done=6, trials_done=3)
    assert resume_words(done, True, "<dict>") == (
        "6 runs done, 3 trials finished, nothing left to run (raise trials or replicates in the spec to "
        "extend it)"
    )


def test_curves_without_the_primary_metric_are_warned_of() -> None:
    s = _stats()
    s.curves_without_primary = 2
    table = pd.DataFrame({"trial": [0], "status": ["complete"], "loss": [1.0], "error": [None]})
    assert metric_warnings(s, table, ["loss"]) == [
        "2 runs reported steps (trial.report) without loss, the primary metric, so a pruner cannot judge "
        "them and the curves figure draws another; report loss=... at each step"
    ]


def test_the_best_line_says_a_mean_only_of_several_replicates() -> None:
    table = pd.DataFrame({"trial": [0], "status": ["complete"], "loss": [1.0], "error": [None]})
    best = {"trial": 0, "metric": "loss", "mean": 0.5, "n": 1, "params": {"lr": 0.1}}
    assert (
        summary(_stats(), "x", table, best, "/r/x")[-2] == "best: trial 0 loss=0.5 (1 replicate) with lr=0.1"
    )
    three = summary(_stats(), "x", table, {**best, "n": 3}, "/r/x")[-2]
    assert three == "best: trial 0 loss=0.5 (mean of 3 replicates) with lr=0.1"
