"""The winner's curse, measured and fixed: with many trials in one arm and one in the other and no
true effect, picking each arm's best trial favours the bigger arm; the confirmation stage (the
chosen configurations rerun on fresh seeds) is calibrated again."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sweeper.analysis import hypothesis_verdict
from sweeper.engine.channel import Monitor
from sweeper.engine.confirm import choose
from sweeper.results.values import CONFIRM_BASE
from sweeper.search.seeds import confirm_seeds, replicate_seeds
from tests.compare_fixture import compare_spec, confirm_frame, sweep_frame

SWEEPS = 100  # independent sweeps, held as the settings of one table so one pass judges them all


def rate(comparisons, alpha=0.05) -> float:
    """Share of sweeps whose own (uncorrected) verdict says the treatment is better."""
    return float(np.mean([c.p_value < alpha and c.effect > 0 for c in comparisons]))


def test_confirmation_removes_the_bias_towards_the_bigger_arm():
    sweeps = [f"s{i:03d}" for i in range(SWEEPS)]
    truth = dict.fromkeys(sweeps, 0.0)
    rng = np.random.default_rng(21)
    spec = compare_spec(sweeps, replicates=5, within=("dataset",), confirm=5)
    search = sweep_frame(rng, truth, trials={"new": 20, "old": 1})
    v = hypothesis_verdict(search, spec)
    assert v is not None and v.stage == "search"
    without = rate(v.comparisons)
    both = pd.concat([search, confirm_frame(rng, spec, search, truth)], ignore_index=True)
    v = hypothesis_verdict(both, spec)
    assert v is not None and v.stage == "confirm" and len(v.search) == SWEEPS
    with_confirm = rate(v.comparisons)
    print(f"supported without confirm: {without:.3f}, with confirm: {with_confirm:.3f}")
    assert without > 0.10  # biased: the nominal rate is alpha / 2 = 0.025
    assert with_confirm <= 0.025 + 3.5 * np.sqrt(0.025 * 0.975 / SWEEPS)
    # the shrinkage is the curse, measured: the big arm's search estimate falls on fresh seeds
    drop = np.mean(
        [s.treatment_mean - c.treatment_mean for s, c in zip(v.search, v.comparisons, strict=True)]
    )
    assert drop > 0.005


def test_choose_picks_each_arms_top_trials_per_setting_with_fresh_ids():
    spec = compare_spec(["a", "b"], replicates=3, within=("dataset",), confirm=4)
    search = sweep_frame(
        np.random.default_rng(3), {"a": 0.0, "b": 0.0}, trials={"new": 5, "old": 2}, replicates=3
    )
    picked = choose(spec, search)
    assert [p.trial for p in picked] == [CONFIRM_BASE + i for i in range(4)]
    means = search.groupby("trial").agg(
        acc=("acc", "mean"), model=("model", "first"), dataset=("dataset", "first")
    )
    for p in picked:
        arm = means[(means.model == p.params["model"]) & (means.dataset == p.params["dataset"])]
        best = search[search.trial == arm.acc.idxmax()].iloc[0]
        assert p.params["h"] == best.h
    spec3 = compare_spec(["a"], replicates=3, confirm=4)
    from dataclasses import replace

    from sweeper.spec.experiment import Confirm

    assert spec3.compare is not None
    top = replace(spec3, compare=replace(spec3.compare, confirm=Confirm(4, top=3)))
    assert len(choose(top, search[search.dataset == "a"])) == 3 + 2  # old has only 2 trials there


def test_confirmation_seeds_are_fresh_and_reproducible():
    search, fresh = replicate_seeds(7, 50), confirm_seeds(7, 50)
    assert not set(search) & set(fresh)
    assert fresh == confirm_seeds(7, 50) and fresh[:10] == confirm_seeds(7, 10)
    assert confirm_seeds(8, 5) != confirm_seeds(7, 5)


def test_confirmation_runs_are_never_pruned():
    judge = {
        "study_name": "confirm",
        "metric": "acc",
        "direction": "maximize",
        "method": "median",
        "options": {"n_startup_trials": 0, "n_warmup_steps": 0},
    }
    monitor = Monitor(judge)
    for trial in range(5):  # good finished trials
        monitor.send([(trial, 0, 1, 1, 0.0, {"acc": 0.9})], ended=(trial, 0, "complete", 0.9))
        monitor.finish(trial, "complete", 0.9)
    assert monitor.send([(5, 0, 1, 1, 0.0, {"acc": 0.1})], ask=(5, 0))  # a bad search run is pruned
    assert not monitor.send([(CONFIRM_BASE, 0, 1, 1, 0.0, {"acc": 0.1})], ask=(CONFIRM_BASE, 0))
