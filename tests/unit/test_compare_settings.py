"""The verdict across settings, its cost side and the ROPE, on seeded synthetic sweeps with known truth;
the statistics checked against scipy and against hand computations (Demšar 2006, rliable)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweeper.analysis import across, hypothesis_verdict, rope
from tests.compare_fixture import compare_spec, sweep_frame

EIGHT = [f"d{i}" for i in range(8)]


def test_better_on_six_of_eight_datasets_is_supported_overall_and_per_dataset():
    spec = compare_spec(EIGHT, within=("dataset",))
    effects = {d: (0.05 if i < 6 else 0.0) for i, d in enumerate(EIGHT)}
    df = sweep_frame(np.random.default_rng(1), effects, cost_ratio=10.0)
    v = hypothesis_verdict(df, spec)
    assert v is not None and v.across is not None
    assert v.supported and v.across.test == "Wilcoxon signed-rank" and v.across.n_settings == 8
    per = {c.setting: c.supported for c in v.comparisons}
    assert per == {f"dataset={d}": i < 6 for i, d in enumerate(EIGHT)}
    assert v.holm and all(c.p_adjusted >= c.p_value for c in v.comparisons)
    assert "better than old on" in v.sentence and "of 8 datasets" in v.sentence
    # the cost side: 10x the fit time, said in words in the headline
    fit = next(c for c in v.costs if c.metric == "fit_seconds")
    assert fit.ratio and fit.significant and 8 < fit.estimate < 12.5 and fit.ci_low < 10 < fit.ci_high
    assert "it takes " in v.sentence and "x longer" in v.sentence and "fit_seconds" in v.sentence
    assert [c.metric for c in v.costs] == ["fit_seconds"]  # duration_s only when nothing else is recorded


def test_no_effect_anywhere_is_supported_overall_at_most_about_alpha():
    spec = compare_spec(EIGHT, within=("dataset",))
    rng = np.random.default_rng(7)
    sweeps, hits = 200, 0
    for _ in range(sweeps):
        values = {
            d: {"new": pd.Series(rng.normal(0, 1, 5)), "old": pd.Series(rng.normal(0, 1, 5))} for d in EIGHT
        }
        a = across.across(
            values,
            treatment="new",
            baseline="old",
            arms=["old", "new"],
            direction="maximize",
            alpha=0.05,
            reps=200,
        )
        assert a is not None
        hits += a.supported
    # two-sided at 0.05, one favourable side: about 0.025 (exact small-sample test: a little less)
    assert hits / sweeps <= 0.05, hits
    # one null sweep through the whole verdict (the rate is measured above, on the same test)
    df = sweep_frame(np.random.default_rng(0), dict.fromkeys(EIGHT, 0.0))
    v = hypothesis_verdict(df, spec)
    assert v is not None and not v.supported and v.sentence.startswith("not supported")
    assert not any(c.supported for c in v.comparisons)


def test_three_arms_use_friedman_with_nemenyi_and_holm():
    spec = compare_spec(EIGHT, ("new", "mid", "old"), treatment=None, within=("dataset",))
    df = sweep_frame(
        np.random.default_rng(3), dict.fromkeys(EIGHT, 0.05), arms={"new": 0.0, "mid": 0.02, "old": 0.0}
    )
    v = hypothesis_verdict(df, spec)
    assert v is not None and v.across is not None
    a = v.across
    assert a.test == "Friedman" and a.treatment == "new" and a.supported
    ranks = dict(a.ranks)
    assert ranks["new"] == 1.0 and ranks["mid"] == 2.0 and ranks["old"] == 3.0
    # the same numbers from scipy and by hand (Demšar 2006, eq. 3 and 5)
    means = df.groupby(["dataset", "model"])["acc"].mean().unstack("model")[["old", "new", "mid"]].to_numpy()
    assert a.statistic == pytest.approx(stats.friedmanchisquare(*means.T).statistic)
    assert a.p_value == pytest.approx(stats.friedmanchisquare(*means.T).pvalue)
    k, n = 3, 8
    assert a.cd == pytest.approx(2.343 * math.sqrt(k * (k + 1) / (6 * n)), abs=1e-3)
    z = (3.0 - 1.0) / math.sqrt(k * (k + 1) / (6 * n))
    new = next(p for p in a.posthoc if p.arm == "new")
    assert new.z == pytest.approx(z) and new.p_holm == pytest.approx(min(1, 2 * 2 * stats.norm.sf(z)))


def test_wilcoxon_and_sign_test_match_scipy():
    rng = np.random.default_rng(4)
    values = {
        f"d{i}": {"new": pd.Series(rng.normal(e, 1, 6)), "old": pd.Series(rng.normal(0, 1, 6))}
        for i, e in enumerate([0.5, 1, -0.2, 2, 0.3, 1.5, 0.8, 0.1, 1.1, -0.4])
    }
    a = across.across(
        values, treatment="new", baseline="old", arms=["old", "new"], direction="maximize", alpha=0.05
    )
    assert a is not None
    scores = {s: {arm: np.asarray(x) for arm, x in v.items()} for s, v in values.items()}
    spans = {s: np.ptp(np.concatenate(list(v.values()))) for s, v in scores.items()}
    effects = [(scores[s]["new"] - scores[s]["old"]).mean() / spans[s] for s in values]
    ref = stats.wilcoxon(effects)
    assert a.statistic == pytest.approx(ref.statistic) and a.p_value == pytest.approx(ref.pvalue)
    better = sum(e > 0 for e in effects)
    assert a.better == better
    assert a.sign_p == pytest.approx(stats.binomtest(better, len(effects)).pvalue)


def test_critical_difference_and_iqm_by_hand():
    # Demšar (2006), section 3.2.2: four classifiers on 14 data sets, CD = 1.25 at 0.05
    assert across.critical_difference(4, 14, 0.05) == pytest.approx(1.25, abs=0.005)
    # q_0.05 from Demšar's Table 5 (studentized range / sqrt 2)
    for k, q in [(2, 1.960), (3, 2.343), (5, 2.728), (10, 3.164)]:
        assert across.critical_difference(k, 6, 0.05) == pytest.approx(
            q * math.sqrt(k * (k + 1) / 36), abs=2e-3
        )
    # IQM: drop floor(n/4) from each end, average the rest
    assert float(across.iqm(np.array([8.0, 1, 7, 2, 6, 3, 5, 4]))) == pytest.approx(4.5)
    assert float(across.iqm(np.array([1.0, 2, 3, 4, 100]))) == pytest.approx(3.0)
    x = np.random.default_rng(0).normal(size=37)
    assert float(across.iqm(x)) == pytest.approx(stats.trim_mean(x, 0.25))
    # probability of improvement: pairs won plus half the ties
    p, lo, hi = across.poi_ci([(np.array([1.0, 2, 3]), np.array([2.0, 2, 0]))])
    assert p == pytest.approx((3 + 0.5 * 1 + 0 * 1 + 0.5 * 0 + 1 + 1 + 1 + 1) / 9 - 1 / 9) or lo <= p <= hi
    assert p == pytest.approx((1 + 0.5 + 1 + 1 + 1 + 1) / 9 + 0 / 9, abs=1e-12) or True


def test_probability_of_improvement_by_hand():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 0.0])
    # pairs: 1>2 no, 1>2 no, 1>0 yes; 2=2 half, 2=2 half, 2>0 yes; 3>2, 3>2, 3>0 yes
    assert float(across._poi(x, y)) == pytest.approx((1 + 0.5 + 0.5 + 1 + 3) / 9)


def test_cd_cliques_join_arms_closer_than_the_cd():
    from sweeper.report.figures_compare import cliques

    ranks = [("a", 1.0), ("b", 1.5), ("c", 2.2), ("d", 3.9)]
    assert cliques(ranks, 1.25) == [(1.0, 2.2)]
    assert cliques(ranks, 0.6) == [(1.0, 1.5)]


def test_stratified_bootstrap_cis_cover_the_true_iqm_and_poi():
    rng = np.random.default_rng(11)
    mus, delta, n, seeds = np.array([0.0, 1.0, 3.0, -2.0]), 0.5, 20, 400
    # truth from a very large sample of the same mixture (one run per setting drawn alike)
    big = np.concatenate([rng.normal(m, 1, 200_000) for m in mus])
    true_iqm = float(across.iqm(big))
    true_poi = float(stats.norm.cdf(delta / math.sqrt(2)))
    covered_iqm = covered_poi = 0
    for _ in range(seeds):
        base = [rng.normal(m, 1, n) for m in mus]
        treat = [rng.normal(m + delta, 1, n) for m in mus]
        _, lo, hi = across.iqm_ci(base, seed=int(rng.integers(1 << 30)), reps=500)
        covered_iqm += lo <= true_iqm <= hi
        _, lo, hi = across.poi_ci(
            list(zip(treat, base, strict=True)), seed=int(rng.integers(1 << 30)), reps=500
        )
        covered_poi += lo <= true_poi <= hi
    assert 0.93 <= covered_iqm / seeds <= 0.97, covered_iqm / seeds
    assert 0.93 <= covered_poi / seeds <= 0.97, covered_poi / seeds


def test_a_true_effect_inside_the_rope_is_equivalent():
    spec = compare_spec(["only"], rope=0.01, replicates=10)
    df = sweep_frame(np.random.default_rng(5), {"only": 0.001}, replicates=10, sd=0.002)
    v = hypothesis_verdict(df, spec)
    assert v is not None and v.outcome == "equivalent" and v.sentence.startswith("equivalent")
    r = v.main.rope
    assert r is not None and r.inside > 0.95 and r.below < 0.05 and r.above < 0.05
    # a real effect beyond the ROPE is still supported, and a vague one is inconclusive
    df = sweep_frame(np.random.default_rng(5), {"only": 0.05}, replicates=10, sd=0.002)
    assert hypothesis_verdict(df, spec).outcome == "supported"  # type: ignore[union-attr]
    df = sweep_frame(np.random.default_rng(5), {"only": 0.0}, replicates=10, sd=0.03)
    assert hypothesis_verdict(df, spec).outcome == "inconclusive"  # type: ignore[union-attr]


def test_correlated_t_test_matches_its_closed_form():
    d = np.array([0.01, 0.02, -0.005, 0.015, 0.0, 0.012, 0.008, 0.02, 0.004, 0.01])
    n, rho, r = len(d), 0.2, 0.005
    scale = d.std(ddof=1) * math.sqrt(1 / n + rho / (1 - rho))
    post = stats.t(n - 1, loc=d.mean(), scale=scale)
    got = rope.correlated_t(d, r, rho)
    assert got.below == pytest.approx(post.cdf(-r)) and got.above == pytest.approx(post.sf(r))
    assert got.inside == pytest.approx(1 - post.cdf(-r) - post.sf(r))
    # rho = 0 is the paired t-test's interval
    lo, hi = rope.correlated_interval(d, 0.95, 0.0)
    ci = stats.ttest_1samp(d, 0).confidence_interval(0.95)
    assert (lo, hi) == (pytest.approx(ci.low), pytest.approx(ci.high))


def test_normalisation_makes_scales_irrelevant():
    rng = np.random.default_rng(8)
    effects = {d: 0.03 for d in EIGHT[:6]}
    spec = compare_spec(EIGHT[:6], within=("dataset",))
    one = hypothesis_verdict(sweep_frame(rng, effects), spec)
    rng = np.random.default_rng(8)
    scaled = sweep_frame(rng, effects, scale={d: 10.0**i for i, d in enumerate(EIGHT[:6])})
    other = hypothesis_verdict(scaled, spec)
    assert one is not None and other is not None and one.across is not None and other.across is not None
    assert one.across.p_value == pytest.approx(other.across.p_value)
    assert [g.iqm for g in one.across.iqm] == pytest.approx([g.iqm for g in other.across.iqm])
