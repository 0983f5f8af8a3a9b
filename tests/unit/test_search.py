"""The searcher: every method runs through ask/tell, conditionals hold, runs are reproducible."""

from __future__ import annotations

import math

import pytest

from sweeper import load_spec
from sweeper.search.methods import METHODS
from sweeper.search.searcher import Searcher, budget, directions
from tests.conftest import sweep_spec

CONDITIONAL = {
    "model": {"choice": ["custom", "resnet50"]},
    "width": {"int": [16, 128], "step": 16, "when": {"model": "custom"}},
    "lr": {"float": [1e-3, 1.0], "log": True},
    "data": "digits",
}


def _drive(searcher: Searcher, value=lambda p: p["lr"]) -> list[dict]:
    out = []
    while (p := searcher.ask()) is not None:
        out.append(p.params)
        v = value(p.params)
        searcher.tell(p.trial, [v] * len(directions(searcher.spec)), "complete")
    return out


@pytest.mark.parametrize("method", ["random", "tpe", "cmaes", "qmc", "nsga2", "grid", "bruteforce"])
def test_every_method_honours_conditionals_and_budget(method):
    variables = dict(CONDITIONAL)
    if method in ("grid", "bruteforce"):
        variables["lr"] = {"float": [0.1, 0.3], "step": 0.1}
    metrics = [{"acc": "maximize"}, {"secs": "minimize"}]
    spec = load_spec(
        sweep_spec(variables=variables, metrics=metrics, search={"method": method, "trials": 14, "seed": 3})
    )
    params = _drive(Searcher(spec))
    expected = 14 if method not in ("grid", "bruteforce") else min(14, 8 * 3 + 3)
    assert len(params) == expected
    for p in params:
        assert ("width" in p) == (p["model"] == "custom")
        assert p["data"] == "digits"
        assert 1e-3 <= p["lr"] <= 1.0


def test_grid_without_budget_covers_everything_once():
    variables = {**CONDITIONAL, "lr": {"float": [0.1, 0.3], "step": 0.1}}
    spec = load_spec(sweep_spec(variables=variables, search={"method": "grid"}))
    searcher = Searcher(spec)
    params = _drive(searcher)
    assert searcher.total == len(params) == 27
    assert len({tuple(sorted(p.items())) for p in params}) == 27
    bf = _drive(Searcher(load_spec(sweep_spec(variables=variables, search={"method": "bruteforce"}))))
    assert sorted(map(repr, map(sorted, map(dict.items, bf)))) == sorted(
        map(repr, map(sorted, map(dict.items, params)))
    )
    assert bf != params  # brute force visits the same points in a seeded shuffled order


@pytest.mark.parametrize("method", ["random", "tpe", "cmaes", "qmc", "nsga2"])
def test_same_seed_same_trials(method):
    metrics = [{"acc": "maximize"}, {"secs": "minimize"}]

    def make() -> Searcher:
        spec = sweep_spec(
            variables=CONDITIONAL, metrics=metrics, search={"method": method, "trials": 25, "seed": 1}
        )
        return Searcher(load_spec(spec))

    assert _drive(make()) == _drive(make())


def test_failed_and_nonfinite_trials_are_told_as_failed():
    spec = load_spec(sweep_spec(search={"method": "tpe", "trials": 3, "seed": 0}))
    s = Searcher(spec)
    a, b, c = s.ask(), s.ask(), s.ask()
    s.tell(a.trial, None, "failed")
    s.tell(b.trial, [math.nan], "complete")
    s.tell(c.trial, [1.0], "complete")
    states = [t.state.name for t in s.study.trials]
    assert states == ["FAIL", "FAIL", "COMPLETE"]


def test_deterministic_mode_gates_asks_and_tells_in_order():
    spec = load_spec(
        sweep_spec(search={"method": "tpe", "trials": 10, "seed": 0, "deterministic": True, "concurrency": 2})
    )
    s = Searcher(spec)
    t0, t1 = s.ask(), s.ask()
    assert s.ask() is None  # trial 2 waits for trial 0
    s.tell(t1.trial, [1.0], "complete")
    assert s.ask() is None  # trial 1 finishing first does not help
    s.tell(t0.trial, [2.0], "complete")
    t2 = s.ask()
    assert t2 is not None and t2.trial == 2
    assert [t.state.name for t in s.study.trials][:2] == ["COMPLETE", "RUNNING"]  # 1 not told yet


def test_counting_a_budget_builds_no_study(monkeypatch):
    import optuna

    def refuse(*args, **kwargs):
        raise AssertionError("an Optuna study was created")

    monkeypatch.setattr(optuna, "create_study", refuse)
    grid = load_spec(sweep_spec(variables={"x": {"int": [0, 9]}, "y": "a"}, search={"method": "grid"}))
    assert budget(grid) == 10
    tpe = load_spec(sweep_spec(search={"method": "tpe", "trials": 7}))
    assert budget(tpe) == 7
    for method in ("grid", "bruteforce", "random", "qmc"):  # they learn nothing: no study at all
        spec = load_spec(sweep_spec(variables={"x": {"int": [0, 9]}}, search={"method": method, "trials": 4}))
        searcher = Searcher(spec)
        assert searcher.study is None and len(_drive(searcher, lambda p: p["x"])) == 4


def test_the_spec_allows_exactly_the_registrys_methods():
    from sweeper.errors import SpecError

    with pytest.raises(SpecError) as err:
        load_spec(sweep_spec(search={"method": "annealing", "trials": 3}))
    assert f"use one of {', '.join(METHODS)}" in str(err.value)
    for method, info in METHODS.items():
        metrics = [{"a": "minimize"}, {"b": "minimize"}] if info.multi_objective else [{"a": "minimize"}]
        spec = load_spec(
            sweep_spec(
                metrics=metrics, search={"method": method, "trials": 2}, variables={"x": {"choice": [1, 2]}}
            )
        )
        assert Searcher(spec).adaptive == (info.proposer == "asked")
