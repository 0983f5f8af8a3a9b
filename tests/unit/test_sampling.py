"""The fast random/QMC path: trial k depends on (seed, k) only, and every value lies in its range."""

from __future__ import annotations

import math

import pytest

from sweeper.search.points import BLOCK, PointStream
from sweeper.search.searcher import Searcher
from sweeper.spec.model import load_spec

VARIABLES = {
    "lr": {"float": [1e-4, 1e-1], "log": True},
    "width": {"int": [16, 256], "log": True},
    "depth": {"int": [1, 5]},
    "drop": {"float": [0.0, 0.5], "step": 0.1},
    "x": {"float": [-2.0, 3.0]},
    "opt": {"choice": ["sgd", "adam", 3]},
    "momentum": {"float": [0.5, 0.99], "when": {"opt": "sgd"}},
    "tag": "fixed",
}


def _spec(method: str, seed: int = 0, trials: int = 600):
    return load_spec(
        {
            "experiment": "s",
            "objective": "m:f",
            "metrics": [{"loss": "minimize"}],
            "variables": VARIABLES,
            "search": {"method": method, "trials": trials, "seed": seed},
        }
    )


@pytest.mark.parametrize("method", ["random", "qmc"])
def test_values_in_range_and_levels_covered(method):
    spec = _spec(method)
    stream = PointStream(spec.variables, method, 0)
    rows = [stream.params(k) for k in range(600)]
    for p in rows:
        assert 1e-4 <= p["lr"] <= 1e-1 and 16 <= p["width"] <= 256 and isinstance(p["width"], int)
        assert -2.0 <= p["x"] < 3.0 and p["tag"] == "fixed"
        assert any(math.isclose(p["drop"], 0.1 * i) for i in range(6))
        assert ("momentum" in p) == (p["opt"] == "sgd")
        if "momentum" in p:
            assert 0.5 <= p["momentum"] <= 0.99
    assert {p["depth"] for p in rows} == {1, 2, 3, 4, 5}
    assert {p["opt"] for p in rows} == {"sgd", "adam", 3}
    assert {round(p["drop"], 6) for p in rows} == {0.0, 0.1, 0.2, 0.3, 0.4, 0.5}
    small = sum(p["lr"] < 1e-3 for p in rows) / len(rows)  # log-uniform: a third below 1e-3
    assert 0.2 < small < 0.45


@pytest.mark.parametrize("method", ["random", "qmc"])
def test_trial_k_depends_on_seed_and_k_only(method):
    spec = _spec(method)
    forward = PointStream(spec.variables, method, 7)
    expected = {k: forward.params(k) for k in range(0, 3 * BLOCK, 37)}
    jumping = PointStream(spec.variables, method, 7)
    for k in sorted(expected, reverse=True):  # any order, any starting point
        assert jumping.params(k) == expected[k]
    other = PointStream(spec.variables, method, 8)
    assert other.params(5) != expected[0] or other.params(0) != expected[0]


def test_searcher_uses_stream_and_needs_no_study_tell():
    spec = _spec("random", seed=3, trials=5)
    searcher = Searcher(spec)
    proposals = [searcher.ask() for _ in range(5)]
    assert searcher.ask() is None
    assert [p.trial for p in proposals] == [0, 1, 2, 3, 4]
    assert proposals[2].params == PointStream(spec.variables, "random", 3).params(2)
    for p in proposals:
        searcher.tell(p.trial, [1.0], "complete")
    again = Searcher(spec)
    assert [again.ask().params for _ in range(5)] == [p.params for p in proposals]
