"""Aggregation and hypothesis tests, checked against scipy.stats and hand-computed answers."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sweeper.analysis as analysis
from sweeper import load, summary
from sweeper.analysis import importance, inference
from sweeper.errors import SweeperError
from sweeper.results.table import read_spec
from sweeper.spec.model import load_spec
from tests.results_fixture import model_rows, model_spec, seed_of, write_results


def frame(spec: dict, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["seed"] = df["replicate"].map(seed_of)
    df["status"] = "complete"
    return df


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(3)
    return write_results(tmp_path / "models", model_spec(), model_rows(rng, effect=0.05, lrs=(1e-3, 1e-2)))


def test_summary_matches_numpy_per_trial_and_is_ranked(folder):
    df = load(folder)
    table = summary(folder)
    assert list(table.columns[:6]) == ["rank", "trial", "model", "lr", "depth", "n"]
    assert len(table) == df["trial"].nunique()
    assert table["rank"].tolist() == list(range(1, len(table) + 1))
    assert table["accuracy_mean"].is_monotonic_decreasing  # accuracy is maximized
    for _, row in table.iterrows():
        values = df.loc[df["trial"] == row["trial"], "accuracy"].to_numpy()
        assert row["n"] == len(values)
        assert row["accuracy_mean"] == pytest.approx(values.mean())
        assert row["accuracy_std"] == pytest.approx(values.std(ddof=1))
        lo, hi = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
        assert (row["accuracy_ci_low"], row["accuracy_ci_high"]) == pytest.approx((lo, hi))
    # the conditional variable is empty where inactive
    assert table.loc[table["model"] == "resnet50", "depth"].isna().all()


def test_summary_by_variable_pools_the_other_variables(folder):
    df = load(folder)
    table = summary(folder, by="model")
    assert table["model"].tolist() == ["custom", "resnet50"]  # custom is 0.05 better
    for _, row in table.iterrows():
        values = df.loc[df["model"] == row["model"], "accuracy"]
        assert row["n_trials"] == 2 and row["n"] == len(values) == 10
        assert row["accuracy_mean"] == pytest.approx(values.mean())
    two = summary(folder, by=["model", "lr"])
    assert len(two) == 4 and (two["n_trials"] == 1).all()
    with pytest.raises(SweeperError, match=r"not a variable.*model, lr, depth"):
        summary(folder, by="optimizer")


def test_minimized_metric_ranks_lowest_first():
    spec_dict = model_spec(extra_metric=True)
    spec_dict["metrics"] = [{"seconds": "minimize"}, {"accuracy": "maximize"}]
    spec_dict["compare"]["metric"] = "accuracy"
    spec = load_spec(spec_dict)
    df = frame(
        spec_dict, model_rows(np.random.default_rng(0), effect=0.05, extra_metric=True, lrs=(1e-3, 1e-2))
    )
    table = analysis.aggregate(df, spec)
    assert table["seconds_mean"].is_monotonic_increasing


def test_failed_replicates_are_not_averaged_but_trials_are_listed():
    spec_dict = model_spec(replicates=3)
    spec = load_spec(spec_dict)
    df = frame(spec_dict, model_rows(np.random.default_rng(0), effect=0.05, replicates=3))
    df.loc[df["trial"] == 1, "status"] = "failed"
    df.loc[(df["trial"] == 0) & (df["replicate"] == 2), "status"] = "failed"
    table = analysis.aggregate(df, spec).set_index("trial")
    assert table.at[1, "n"] == 0 and math.isnan(table.at[1, "accuracy_mean"])
    assert table.at[1, "rank"] == 2  # ranked last
    assert table.at[0, "n"] == 2
    assert table.at[0, "n_failed"] == 1 and table.at[1, "n_failed"] == 3
    assert (table["n_pruned"] == 0).all()


def test_paired_t_test_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 1, 6), rng.normal(0.0, 1, 6)
    res = inference.compare_samples(a, b, paired=True)
    ref = stats.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert res.test == "paired t-test" and res.paired and res.n == 6
    assert res.p_value == pytest.approx(ref.pvalue)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high))
    assert res.effect == pytest.approx((a - b).mean())


def test_welch_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1, 5), rng.normal(0.0, 3, 7)
    res = inference.compare_samples(a, b, paired=False)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.test == "Welch's t-test" and res.n == 5
    assert res.p_value == pytest.approx(ref.pvalue)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high))


def test_heavy_tailed_pairs_switch_to_wilcoxon_matching_scipy():
    rng = np.random.default_rng(2)
    b = rng.normal(0, 1, 30)
    a = b + 0.5 + rng.standard_cauchy(30) * 0.2
    assert stats.shapiro(a - b).pvalue < 0.05
    res = inference.compare_samples(a, b, paired=True)
    assert res.test == "Wilcoxon signed-rank"
    assert res.p_value == pytest.approx(stats.wilcoxon(a - b).pvalue)
    assert res.ci_low < (a - b).mean() < res.ci_high
    # unpaired heavy tails: permutation test, close to scipy's own permutation test
    res = inference.compare_samples(a, b, paired=False)
    assert res.test == "permutation test"
    ref = stats.permutation_test(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        n_resamples=20000,
        vectorized=True,
        rng=np.random.default_rng(5),
    )
    assert res.p_value == pytest.approx(ref.pvalue, abs=0.02)


def test_degenerate_samples_say_why_there_is_no_test():
    res = inference.compare_samples(np.array([1.0]), np.array([0.5]), paired=True)
    assert res.test == "none" and math.isnan(res.p_value)
    same = inference.compare_samples(np.array([2.0, 3.0]), np.array([1.0, 2.0]), paired=True)
    assert same.test == "no spread" and same.effect == 1.0 and same.p_value == 0.0


@pytest.mark.parametrize("paired", [True, False])
def test_a_spread_of_rounding_error_is_no_spread_and_raises_no_warning(paired: bool) -> None:
    noise = np.array([0.1, 0.2, 0.7, 0.33])  # the same seeds' noise in both arms: it cancels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's "catastrophic cancellation" warning would reach the screen
        res = inference.compare_samples(0.3 + noise - noise, noise - noise, paired=paired)
        tie = inference.compare_samples(0.1 + 0.2 + noise - noise, 0.3 + noise - noise, paired=paired)
    assert res.test == "no spread" and res.spread == 0.0
    assert res.effect == pytest.approx(0.3) and res.p_value == 0.0
    # 0.1 + 0.2 is 0.3 up to rounding: no difference at all
    assert tie.test == "no spread" and tie.effect == 0.0 and tie.p_value == 1.0


def test_holm_matches_hand_computation():
    # p sorted: 0.01*4=0.04, 0.02*3=0.06, 0.03*2=0.06, 0.5*1=0.5 (monotone)
    assert inference.holm([0.03, 0.01, 0.5, 0.02]) == pytest.approx([0.06, 0.04, 0.5, 0.06])
    out = inference.holm([0.4, float("nan"), 0.001])
    assert out[0] == pytest.approx(0.4) and math.isnan(out[1]) and out[2] == pytest.approx(0.002)


def test_power_matches_the_textbook_sample_size():
    # paired t-test, d = 0.5, alpha 0.05, power 0.8: 34 pairs (G*Power); unpaired: 64 per group
    assert inference._n_needed(0.5, 1.0, 0.05, paired=True) == 34
    assert inference._n_needed(0.5, 1.0, 0.05, paired=False) == 64
    assert inference._n_needed(0.0, 1.0, 0.05, paired=True) is None


def test_verdict_supported_with_a_real_effect(folder):
    v = analysis.verdict(folder)
    assert v is not None and v.supported
    main = v.main
    assert main.test == "paired t-test" and main.n == 5
    assert main.ci_low > 0 and main.effect == pytest.approx(0.05, abs=0.02)
    head = f"supported at {analysis.ALPHA} = 0.05: custom is higher than resnet50 by"
    assert main.sentence.startswith(head)
    # best arm = best trial of each model, and the test is scipy's on its per-seed values
    df = load(folder)
    t, b = main.treatment_trial, main.baseline_trial
    a_vals = df[df["trial"] == t].sort_values("seed")["accuracy"].to_numpy()
    b_vals = df[df["trial"] == b].sort_values("seed")["accuracy"].to_numpy()
    assert main.p_value == pytest.approx(stats.ttest_rel(a_vals, b_vals).pvalue)
    d = a_vals - b_vals
    assert main.cohen_d == pytest.approx(d.mean() / d.std(ddof=1))
    means = df.groupby("trial")["accuracy"].mean()
    assert t == means[df.groupby("trial")["model"].first() == "custom"].idxmax()
    d = v.to_dict()
    for key in ("supported", "effect", "ci_low", "ci_high", "p_value", "test", "n"):
        assert key in d
    assert d["supported"] is True and "winner's curse" in d["arms_note"]
    # print(v) is what `sweeper report` prints; v at a REPL is one line, not every field
    assert str(v).splitlines() == [v.sentence, *(f"  warning: {w}" for w in main.warnings)]
    assert repr(v) == f"<Verdict: {v.sentence}>"


def test_verdict_not_supported_without_an_effect(tmp_path):
    rng = np.random.default_rng(4)
    folder = write_results(tmp_path / "null", model_spec(), model_rows(rng, effect=0.0))
    v = analysis.verdict(folder)
    assert v is not None and not v.supported
    assert v.main.sentence.startswith("not supported")
    assert v.main.ci_low < 0 < v.main.ci_high


def test_wrong_direction_is_not_supported_and_says_so():
    spec_dict = model_spec()
    spec = load_spec(spec_dict)
    df = frame(spec_dict, model_rows(np.random.default_rng(5), effect=-0.05))
    v = analysis.hypothesis_verdict(df, spec)
    assert not v.supported and v.main.p_value < 0.05
    assert "lower than resnet50" in v.main.sentence and "higher is better" in v.main.sentence


def test_pooled_arms_average_every_trial_per_seed():
    spec_dict = model_spec(arms="pooled")
    spec = load_spec(spec_dict)
    df = frame(spec_dict, model_rows(np.random.default_rng(6), effect=0.03, lrs=(1e-3, 1e-1)))
    v = analysis.hypothesis_verdict(df, spec)
    c = v.main
    assert c.treatment_trial is None and "pooled" in v.arms_note
    per_seed = df.groupby(["model", "seed"])["accuracy"].mean().unstack(0)
    ref = stats.ttest_rel(per_seed["custom"], per_seed["resnet50"])
    assert c.p_value == pytest.approx(ref.pvalue)


def test_many_arms_are_holm_corrected():
    models = ("resnet50", "custom", "vit", "mlp")
    spec_dict = model_spec(treatment=None, models=models)
    spec = load_spec(spec_dict)
    effects = {"resnet50": 0.0, "custom": 0.06, "vit": 0.0, "mlp": -0.01}
    df = frame(
        spec_dict,
        model_rows(np.random.default_rng(7), effect=0.0, models=models, effects=effects, replicates=6),
    )
    v = analysis.hypothesis_verdict(df, spec)
    assert v.holm and [c.treatment for c in v.comparisons] == ["custom", "vit", "mlp"]
    raw = [c.p_value for c in v.comparisons]
    assert [c.p_adjusted for c in v.comparisons] == pytest.approx(inference.holm(raw))
    assert v.main.treatment == "custom" and v.supported
    assert [c.supported for c in v.comparisons] == [True, False, False]
    assert "Holm-adjusted" in v.main.sentence and v.sentence.startswith("1 of 3 arms")
    assert spec_dict["compare"].get("treatment") is None


def test_small_n_warns_and_estimates_replicates_needed():
    spec_dict = model_spec(replicates=3)
    spec = load_spec(spec_dict)
    df = frame(spec_dict, model_rows(np.random.default_rng(8), effect=0.01, replicates=3, noise_sd=0.02))
    c = analysis.hypothesis_verdict(df, spec).main
    assert any("too small" in w for w in c.warnings)
    assert c.n_needed is not None and c.n_needed > 3
    assert any(f"about {c.n_needed} replicates" in w for w in c.warnings)


def test_unpaired_when_seeds_differ():
    spec_dict = model_spec()
    spec = load_spec(spec_dict)
    df = frame(spec_dict, model_rows(np.random.default_rng(9), effect=0.05))
    df.loc[df["model"] == "custom", "seed"] += 100
    c = analysis.hypothesis_verdict(df, spec).main
    assert not c.paired and c.test == "Welch's t-test"
    a = df.loc[df["model"] == "custom", "accuracy"]
    b = df.loc[df["model"] == "resnet50", "accuracy"]
    assert c.p_value == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    pooled = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    assert c.cohen_d == pytest.approx((a.mean() - b.mean()) / pooled)


def test_indistinguishable_from_best():
    spec_dict = model_spec(replicates=8)
    spec = load_spec(spec_dict)
    # lr 1e-3 and 2e-3 are nearly equal, lr 1e-1 is far worse
    df = frame(
        spec_dict,
        model_rows(
            np.random.default_rng(10),
            effect=0.0,
            replicates=8,
            lrs=(1e-3, 1.1e-3, 1e-1),
            models=("resnet50",),
            noise_sd=0.005,
        ),
    )
    best, same = analysis.best_vs_rest(df, spec)
    assert best in (0, 1) and same == [1 - best]


def test_stability_flags_flips_and_measures_spread():
    spec_dict = model_spec(replicates=6)
    spec = load_spec(spec_dict)
    df = frame(
        spec_dict,
        model_rows(
            np.random.default_rng(11),
            effect=0.0,
            replicates=6,
            lrs=(1e-3, 1.01e-3, 1e-1),
            models=("resnet50",),
        ),
    )
    st = analysis.stability(df, spec)
    t = st.table.set_index("trial")
    g = df.groupby("trial")["accuracy"]
    assert t["cv"].to_numpy() == pytest.approx((g.std() / g.mean()).loc[t.index].to_numpy())
    assert t.at[0, "flips"] and t.at[1, "flips"]  # near-equal trials swap places across seeds
    assert t.at[2, "seed_rank_min"] == 3 and not t.at[2, "flips"]
    assert st.seeds == 6 and 0 < st.kendall_w <= 1


def test_kendall_w_extremes():
    same = np.tile(np.arange(1, 5), (3, 1)).astype(float)
    assert inference.kendall_w(same) == pytest.approx(1.0)
    opposed = np.array([[1, 2, 3, 4], [4, 3, 2, 1]], dtype=float)
    assert inference.kendall_w(opposed) == pytest.approx(0.0)


def test_no_compare_means_no_verdict(tmp_path):
    spec_dict = model_spec()
    del spec_dict["compare"]
    folder = write_results(
        tmp_path / "nocompare", spec_dict, model_rows(np.random.default_rng(0), effect=0.0)
    )
    assert analysis.verdict(folder) is None
    assert read_spec(folder).compare is None


def test_compare_names_one_several_or_all_treatments():
    from sweeper.errors import SpecError

    models = ("resnet50", "custom", "vit")
    assert load_spec(model_spec(models=models)).compare.treatment == "custom"
    assert load_spec(model_spec(models=models, treatment=None)).compare.treatment is None
    assert load_spec(model_spec(models=models, treatment="all")).compare.treatment is None
    many = load_spec(model_spec(models=models, treatment=["custom", "vit"])).compare
    assert many.treatment == ("custom", "vit") and many.arms == "best"
    with pytest.raises(SpecError, match="baseline 'resnet50' is also a treatment"):
        load_spec(model_spec(models=models, treatment=["resnet50", "vit"]))
    with pytest.raises(SpecError, match=r"compare\.arms"):
        load_spec(model_spec(arms="mean"))
    with pytest.raises(SpecError, match="'gpt' is not one of"):
        load_spec(model_spec(treatment="gpt"))


def test_importance_ranks_the_variable_that_matters(monkeypatch):
    spec_dict = model_spec()
    spec = load_spec(spec_dict)
    rng = np.random.default_rng(12)
    df = frame(spec_dict, model_rows(rng, effect=0.08, lrs=tuple(10 ** rng.uniform(-4, -1, 12))))
    imp = importance.importance(df, spec)
    assert imp.method == "fANOVA" and imp.trials == 24
    assert imp.values["model"] > imp.values["lr"] and imp.left_out == ("depth",)
    # the conditional variable is weighed where it is active (depth is fixed at 4 there: no share)
    assert [(label, n, set(v)) for label, n, v in imp.branches] == [("model=custom", 12, {"lr"})]
    assert imp == importance.importance(df, spec)  # seeded: the same report twice
    monkeypatch.setitem(__import__("sys").modules, "sklearn", None)  # as if not installed
    fallback = importance.importance(df, spec)
    assert fallback.method == "PED-ANOVA" and "scikit-learn" in fallback.note
    assert {"model", "lr"} <= set(fallback.values)


def test_importance_inside_each_branch_of_a_conditional_variable():
    spec_dict = model_spec()
    spec = load_spec(spec_dict)
    rng = np.random.default_rng(13)
    rows = []
    for trial in range(24):
        model = ("custom", "resnet50")[trial % 2]
        depth = int(rng.integers(2, 9)) if model == "custom" else None
        lr = float(10 ** rng.uniform(-4, -1))
        for r in range(2):  # custom: depth decides; resnet50: lr decides
            acc = 0.8 + (0.02 * depth if depth else 0.05 * np.log10(lr)) + rng.normal(0, 0.001)
            rows.append(
                {"trial": trial, "replicate": r, "model": model, "lr": lr, "depth": depth, "accuracy": acc}
            )
    imp = importance.importance(frame(spec_dict, rows), spec)
    branches = {label: values for label, _, values in imp.branches}
    assert set(branches) == {"model=custom"}  # resnet50 has no conditional variable
    assert branches["model=custom"]["depth"] > 0.8


def test_compare_on_a_conditional_integer_variable():
    spec_dict = model_spec()
    spec_dict["variables"]["depth"] = {"choice": [2, 8], "when": {"model": "custom"}}
    spec_dict["compare"] = {"variable": "depth", "treatment": 8, "baseline": 2}
    spec = load_spec(spec_dict)
    rows = model_rows(np.random.default_rng(14), effect=0.0, models=("resnet50", "custom"))
    extra = [
        {**r, "trial": r["trial"] + 2, "depth": 8, "accuracy": r["accuracy"] + 0.03}
        for r in rows
        if r["model"] == "custom"
    ]
    for r in rows:
        if r["model"] == "custom":
            r["depth"] = 2
    df = frame(spec_dict, rows + extra)
    df["depth"] = df["depth"].astype("Int64")  # nullable, as load() returns it
    v = analysis.hypothesis_verdict(df, spec)
    assert v.main.n == 5 and v.main.effect == pytest.approx(0.03) and v.supported


def test_a_cost_equal_up_to_rounding_is_no_difference() -> None:
    from sweeper.analysis.cost import compare_cost

    noise = pd.Series([-0.1, -0.2, -0.7, -0.33], index=[11, 12, 13, 14])  # per seed
    tie = compare_cost([(0.1 + 0.2 + noise, 0.3 + noise)], "score")  # mixed signs: differences
    assert tie is not None and not tie.ratio
    assert tie.estimate == 0.0 and tie.p_value == 1.0 and not tie.significant  # 0.1 + 0.2 is 0.3, rounded
    real = compare_cost([(noise + 0.5 - 1, noise - 1)], "score")
    assert real is not None and real.estimate == pytest.approx(0.5) and real.significant
