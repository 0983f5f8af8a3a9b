"""The statistics hold their promises over many seeded synthetic sweeps.

A 95% CI must cover the true effect about 95% of the time; with no effect the hypothesis must be
"supported" about alpha/2 of the time (two-sided test, one favourable side); with a clear effect
it must be supported nearly always. Bounds are ~3 binomial standard errors wide, so the test is
deterministic (fixed seeds) and not flaky under small changes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sweeper.analysis as analysis
from sweeper.analysis import inference
from sweeper.spec.model import load_spec
from tests.results_fixture import model_rows, model_spec, seed_of

SEEDS = 400


def within(rate: float, nominal: float, n: int) -> bool:
    se = np.sqrt(nominal * (1 - nominal) / n)
    return abs(rate - nominal) <= 3.5 * se


@pytest.mark.parametrize("paired", [True, False])
def test_t_intervals_cover_the_true_effect_at_the_nominal_rate(paired):
    rng = np.random.default_rng(100)
    true = 0.3
    covered = 0
    for _ in range(SEEDS):
        shared = rng.normal(0, 2, 6)  # the seed's effect, common to both arms when paired
        a = true + (shared if paired else rng.normal(0, 2, 6)) + rng.normal(0, 1, 6)
        b = shared + rng.normal(0, 1, 6)
        res = inference.compare_samples(a, b, paired=paired)
        covered += res.ci_low <= true <= res.ci_high
    assert within(covered / SEEDS, 0.95, SEEDS), covered / SEEDS


def test_bootstrap_interval_of_the_rank_test_path_covers_the_mean():
    rng = np.random.default_rng(101)
    true, n, runs, covered, wilcoxon = 0.5, 12, 200, 0, 0
    for _ in range(runs):
        d = true + rng.laplace(0, 1, n)  # heavy-ish tails: some runs take the Wilcoxon path
        res = inference.compare_samples(d, np.zeros(n), paired=True)
        wilcoxon += res.test == "Wilcoxon signed-rank"
        covered += res.ci_low <= true <= res.ci_high
    assert wilcoxon > 0
    # percentile bootstrap undercovers a little at n = 12; it must still be close to nominal
    assert 0.88 <= covered / runs <= 0.99, covered / runs


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["seed"] = df["replicate"].map(seed_of)
    df["status"] = "complete"
    return df


def verdicts(effect: float, runs: int, seed: int) -> tuple[float, float]:
    """Supported rate and CI coverage of the full pipeline on synthetic sweeps."""
    spec = load_spec(model_spec())
    rng = np.random.default_rng(seed)
    supported = covered = 0
    for _ in range(runs):
        df = _frame(model_rows(rng, effect=effect, seed_sd=0.03, noise_sd=0.01))
        v = analysis.hypothesis_verdict(df, spec)
        supported += v.supported
        covered += v.main.ci_low <= effect <= v.main.ci_high
    return supported / runs, covered / runs


def test_no_effect_is_rarely_supported_and_ci_covers_zero():
    supported, covered = verdicts(0.0, 150, seed=7)
    assert supported <= 0.025 + 3.5 * np.sqrt(0.025 * 0.975 / 150), supported
    assert within(covered, 0.95, 150), covered


def test_real_effect_is_supported_and_ci_covers_it():
    # effect 0.03 against a paired spread of 0.01 * sqrt(2): power ~ 0.99 at n = 5
    supported, covered = verdicts(0.03, 150, seed=8)
    assert supported >= 0.9, supported
    assert within(covered, 0.95, 150), covered


def test_holm_keeps_the_family_wise_error_under_alpha():
    # four null arms against one baseline, 6 paired seeds each, many sweeps at once
    rng = np.random.default_rng(9)
    runs, arms, n = 2000, 4, 6
    shared = rng.normal(0, 1, (runs, 1, n))
    base = shared[:, 0] + rng.normal(0, 0.5, (runs, n))
    treat = shared + rng.normal(0, 0.5, (runs, arms, n))
    p = stats.ttest_rel(treat, base[:, None, :], axis=-1).pvalue
    better = treat.mean(-1) > base.mean(-1)[:, None]
    raw = ((p < 0.05) & better).any(axis=1).mean()
    fwer = np.mean(
        [
            any(adj < 0.05 and b for adj, b in zip(inference.holm(row), up, strict=True))
            for row, up in zip(p, better, strict=True)
        ]
    )
    # one-sided wins without correction: ~ 1 - 0.975^4 = 0.096; Holm keeps it near 0.025
    assert raw > 0.07
    assert fwer <= 0.025 + 3.5 * np.sqrt(0.025 * 0.975 / runs), fwer
