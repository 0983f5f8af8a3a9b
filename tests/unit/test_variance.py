"""The seed-factor variance decomposition against a hand computation and statsmodels' MixedLM."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from sweeper.analysis.variance import components, decompose
from sweeper.search.seeds import factor_seeds
from sweeper.spec.experiment import Experiment, Metric, SeedFactor, Variable

SPEC = Experiment(
    name="f",
    objective="m:f",
    metrics=(Metric("acc", "maximize"),),
    variables=(Variable("lr", "float", low=0.0, high=1.0),),
    replicates=12,
    factors=(SeedFactor("data", 4), SeedFactor("init", 3)),
)


def table(spec: Experiment, trials: int, value) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """A factorial trial table whose replicate r has value(trial, data level, init level)."""
    rows = []
    sizes = [f.n for f in spec.factors]
    for k in range(trials):
        for r, cell in enumerate(itertools.product(*(range(n) for n in sizes))):
            rows.append(
                {"trial": k, "replicate": r, "status": "complete", "lr": 0.1 * k, "acc": value(k, *cell)}
                | factor_seeds(0, spec.factors, r)
            )
    return pd.DataFrame(rows)


def test_components_match_a_hand_computation() -> None:
    # 2 x 2: y = [[1, 3], [2, 6]]: rows are data levels, columns init levels
    y = [1.0, 3.0, 2.0, 6.0]
    levels = [(0, 0), (0, 1), (1, 0), (1, 1)]
    data, init, resid = components(y, levels, [2, 2])
    # grand 3; data means 2, 4 -> SS 2*(1+1)=4, MS 4; init means 1.5, 4.5 -> SS 2*(2.25*2)=9, MS 9
    # SS_total = 4+0+1+9 = 14; SS_e = 14-4-9 = 1 (df 1) -> MS_e 1
    assert resid == pytest.approx(1.0)
    assert data == pytest.approx((4 - 1) / 2)
    assert init == pytest.approx((9 - 1) / 2)


def test_components_match_statsmodels_mixedlm() -> None:
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 2.0, 6), rng.normal(0, 1.0, 5)
    cells = list(itertools.product(range(6), range(5)))
    y = [a[i] + b[j] + rng.normal(0, 0.5) for i, j in cells]
    mine = components(y, cells, [6, 5])
    frame = pd.DataFrame({"y": y, "data": [i for i, _ in cells], "init": [j for _, j in cells], "g": 1})
    model = smf.mixedlm(
        "y ~ 1", frame, groups="g", re_formula="0", vc_formula={"data": "0 + C(data)", "init": "0 + C(init)"}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit(reml=True)
    names = list(model.exog_vc.names)
    theirs = [float(fit.vcomp[names.index("data")]), float(fit.vcomp[names.index("init")]), float(fit.scale)]
    assert all(m > 0 for m in mine)
    assert mine == pytest.approx(theirs, rel=1e-3)


def test_variance_from_data_alone_goes_to_data_and_the_reverse() -> None:
    rng = np.random.default_rng(1)
    data_effect = rng.normal(0, 1.0, (5, 4))
    only_data = decompose(table(SPEC, 5, lambda k, d, i: k + data_effect[k, d]), SPEC)
    assert only_data is not None
    shares = only_data.shares()
    assert shares["data"] > 0.99 and shares["init"] < 0.01 and shares["residual"] < 0.01
    assert only_data.sentence.startswith(
        "100 % of the spread between replicates comes from data; init adds 0 %"
    )

    init_effect = rng.normal(0, 1.0, (5, 3))
    only_init = decompose(table(SPEC, 5, lambda k, d, i: k + init_effect[k, i]), SPEC)
    assert only_init is not None and only_init.shares()["init"] > 0.99


def test_mixed_spread_is_said_in_words_and_incomplete_trials_are_skipped() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 3.0, (40, 4)), rng.normal(0, 1.0, (40, 3))
    df = table(SPEC, 40, lambda k, d, i: a[k, d] + b[k, i] + rng.normal(0, 0.5))
    df.loc[(df["trial"] == 3) & (df["replicate"] == 5), "status"] = "failed"
    dec = decompose(df, SPEC)
    assert dec is not None and dec.skipped == 1 and len(dec.per_trial) == 39
    shares = dec.shares()
    assert shares["data"] > shares["init"] > shares["residual"] > 0
    assert "comes from data; init adds" in dec.sentence and "remaining" in dec.sentence
    assert decompose(df, dataclasses.replace(SPEC, factors=())) is None


def test_one_factor_takes_all_the_spread() -> None:
    spec = dataclasses.replace(SPEC, factors=(SeedFactor("data", 5),), replicates=5)
    dec = decompose(table(spec, 3, lambda k, d: float(d)), spec)
    assert dec is not None and dec.shares() == {"data": 1.0}


def test_all_trials_at_once_equal_each_trial_alone() -> None:
    """decompose's one vectorised pass gives each trial what components gives it alone."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 2.0, (30, 4)), rng.normal(0, 1.0, (30, 3))
    df = table(SPEC, 30, lambda k, d, i: a[k, d] + b[k, i] + rng.normal(0, 0.5))
    df.loc[(df["trial"] == 7) & (df["replicate"] == 2), "status"] = "failed"  # incomplete: skipped
    df.loc[(df["trial"] == 9) & (df["replicate"] == 4), "acc"] = np.inf  # not finite: skipped
    df = df.sample(frac=1.0, random_state=1)  # rows in any order
    dec = decompose(df, SPEC)
    assert (
        dec is not None
        and dec.skipped == 2
        and list(dec.per_trial["trial"]) == [k for k in range(30) if k not in (7, 9)]
    )
    cols = ["data_seed", "init_seed"]
    for _, row in dec.per_trial.iterrows():
        t = df[df["trial"] == row["trial"]]
        levels = [t[c].rank(method="dense").astype(int) - 1 for c in cols]
        alone = components(t["acc"].tolist(), list(zip(*(lv.tolist() for lv in levels), strict=True)), [4, 3])
        clipped = np.clip(alone, 0, None)
        got = row[["var_data", "var_init", "var_residual"]].to_numpy(dtype=float)
        assert np.allclose(got, clipped, rtol=1e-12, atol=1e-12)
