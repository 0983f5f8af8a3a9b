"""The importance analysis stays bounded on very wide sweeps: it says what it left out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sweeper.analysis.importance import MAX_VARIABLES, importance
from sweeper.results.table import load, read_spec
from tests.results_fixture import write_results


def _sweep(folder: Path, variables: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    spec = {
        "experiment": "wide",
        "objective": "m:f",
        "metrics": [{"loss": "minimize"}],
        "variables": variables,
        "search": {"method": "random", "trials": len(rows)},
    }
    return write_results(folder, spec, rows)


def test_a_choice_of_100000_levels_is_left_out_and_named(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    levels = [f"c{i}" for i in range(100_000)]
    rows = []
    for t in range(30):
        x = float(rng.random())
        rows.append({"trial": t, "replicate": 0, "c": levels[t * 7], "x": x, "loss": x + 0.01 * rng.normal()})
    folder = _sweep(tmp_path / "w", {"c": {"choice": levels}, "x": {"float": [0.0, 1.0]}}, rows)
    imp = importance(load(folder), read_spec(folder))
    assert set(imp.values) == {"x"}
    assert "c (100000 levels)" in imp.note and "left out" in imp.note


def test_thousands_of_variables_are_screened_to_the_most_correlated(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 2000
    rows = []
    for t in range(40):
        vals = {f"v{i}": int(rng.integers(0, 10)) for i in range(n)}
        rows.append({"trial": t, "replicate": 0, **vals, "loss": float(vals["v1234"]) + 0.1 * rng.normal()})
    folder = _sweep(tmp_path / "w", {f"v{i}": {"int": [0, 9]} for i in range(n)}, rows)
    imp = importance(load(folder), read_spec(folder))
    assert len(imp.values) <= MAX_VARIABLES
    assert max(imp.values, key=imp.values.__getitem__) == "v1234"
    assert f"the {MAX_VARIABLES} of {n} variables" in imp.note
