"""Objectives that misbehave on purpose: each ends only its own run, with an error that says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent

# local; Ray on warm actors (the default); Ray on plain tasks (a timeout rules actors out)
BACKENDS = [("local", {}), ("ray", {}), ("ray", {"timeout": "60s"})]


def _spec(name: str, objective: str, variables: dict[str, Any], **extra: Any) -> sweeper.Experiment:
    data = {
        "experiment": name,
        "objective": objective,
        "metrics": [{"value": "maximize"}],
        "variables": variables,
        "search": {"method": "grid"},
        **extra,
    }
    return load_spec(data, root=HERE)


@pytest.mark.parametrize(("backend", "extra"), BACKENDS, ids=["local", "ray-actors", "ray-tasks"])
def test_system_exit_in_an_objective_is_a_failed_run(
    tmp_path: Path, backend: str, extra: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    if backend == "ray":
        request.getfixturevalue("ray_session")
    spec = _spec("exits", "hostile_objectives:exits", {"mode": {"choice": ["exit0", "ok", "exit5"]}}, **extra)
    run = sweeper.launch(spec, results=tmp_path, backend=backend)
    rows = {r["mode"]: r for r in run.table.to_dict("records")}
    assert set(rows) == {"exit0", "ok", "exit5"}  # the sweep went on past both exits
    assert rows["ok"]["status"] == "complete"
    for mode, code in (("exit0", 0), ("exit5", 5)):
        assert rows[mode]["status"] == "failed" and rows[mode]["attempt"] == 1
        assert f"called sys.exit({code})" in rows[mode]["error"], rows[mode]["error"]


def test_a_metric_beyond_float_range_fails_that_run_only(tmp_path: Path) -> None:
    spec = _spec("huge", "hostile_objectives:huge", {"x": {"int": [0, 3]}})
    run = sweeper.launch(spec, results=tmp_path, backend="local")
    table = run.table.sort_values("x")
    assert table.status.tolist() == ["complete", "failed", "complete", "complete"]
    error = table.error.iloc[1]
    assert "beyond the range of a float" in error and "Traceback" not in error, error


def test_brute_force_takes_5_of_10_to_the_12_points_without_building_them(tmp_path: Path) -> None:
    variables = {f"v{i}": {"int": [0, 9]} for i in range(12)}
    spec = _spec(
        "subset", "hostile_objectives:total", variables, search={"method": "bruteforce", "trials": 5}
    )
    run = sweeper.launch(spec, results=tmp_path, backend="local")
    table = run.table
    assert len(table) == 5 and (table.status == "complete").all()
    assert len({tuple(row) for row in table[list(variables)].itertuples(index=False)}) == 5
