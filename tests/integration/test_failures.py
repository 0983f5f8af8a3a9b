"""Failures are recorded, never fatal: exceptions, NaN/inf, crashed processes, timeouts, max_failures."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.errors import SweeperError
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent


def spec(modes: list[str], **extra: Any) -> sweeper.Experiment:
    return load_spec(
        {
            "experiment": "bad",
            "objective": "resume_objectives:misbehave",
            "metrics": [{"value": "maximize"}],
            "variables": {"mode": {"choice": modes}},
            "search": {"method": "grid"},
            **extra,
        },
        root=HERE,
    )


def by_mode(table: Any) -> dict[str, dict[str, Any]]:
    return {row["mode"]: row for row in table.to_dict("records")}


def test_exceptions_and_non_finite_metrics_are_recorded(tmp_path: Path) -> None:
    sweep = sweeper.launch(spec(["ok", "raise", "nan", "inf"]), results=tmp_path, backend="local")
    rows = by_mode(sweep.table)
    assert rows["raise"]["status"] == "failed" and "ValueError: bad batch" in rows["raise"]["error"]
    assert rows["nan"]["status"] == "complete" and math.isnan(rows["nan"]["value"])
    assert rows["inf"]["status"] == "complete" and math.isinf(rows["inf"]["value"])
    assert sweep.best is not None and sweep.best["params"] == {"mode": "ok"}  # inf is not "best"


@pytest.mark.parametrize("method", ["tpe", "cmaes", "nsga2"])
def test_non_finite_metrics_never_crash_the_sampler(tmp_path: Path, method: str) -> None:
    """Adaptive samplers see NaN/inf trials as failed (else TPE and CMA-ES raise on them)."""
    data = {
        "experiment": "nonfinite",
        "objective": "resume_objectives:nonfinite",
        "metrics": [{"loss": "minimize"}, {"other": "minimize"}],
        "variables": {"x": {"float": [0.0, 1.0]}, "y": {"float": [0.0, 1.0]}},
        "search": {"method": method, "trials": 14, "seed": 1},
    }
    sweep = sweeper.launch(load_spec(data, root=HERE), results=tmp_path, backend="local")
    table = sweep.table
    assert len(table) == 14 and (table["status"] == "complete").all()
    assert table["loss"].isna().any() or (~table["loss"].apply(math.isfinite)).any()
    # and resuming rebuilds a study holding those trials as failed, without error
    more = sweeper.launch(
        load_spec({**data, "search": {**data["search"], "trials": 16}}, root=HERE),
        results=tmp_path,
        backend="local",
    )
    assert len(more.table) == 16


def test_max_failures_stops_the_sweep_cleanly(tmp_path: Path) -> None:
    data = {
        "experiment": "many",
        "objective": "resume_objectives:misbehave",
        "metrics": [{"value": "maximize"}],
        "variables": {"mode": {"choice": ["raise", "ok"]}},
        "search": {"method": "random", "trials": 40, "seed": 0},
        "max_failures": 3,
    }
    with pytest.raises(SweeperError) as info:
        sweeper.launch(load_spec(data, root=HERE), results=tmp_path, backend="local")
    text = str(info.value)
    assert "runs failed or timed out (max_failures: 3)" in text and "with retry_failed=True" in text
    table = sweeper.load(tmp_path / "many")
    # tiny runs go in batches, so the last batch may take the count past the limit
    assert (table["status"] == "failed").sum() >= 3 and len(table) < 40
    assert json.loads((tmp_path / "many" / "experiment.json").read_text())["status"] == "stopped"
    # relaunching does not run past the limit either; raising it continues the sweep
    with pytest.raises(SweeperError, match="max_failures"):
        sweeper.launch(load_spec(data, root=HERE), results=tmp_path, backend="local")
    assert len(sweeper.load(tmp_path / "many")) == len(table)
    done = sweeper.launch(
        load_spec({**data, "max_failures": 100}, root=HERE), results=tmp_path, backend="local"
    )
    assert len(done.table) == 40


def test_timeout_spellings_parse() -> None:
    for text, seconds in [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), (45, 45)]:
        assert spec(["ok"], timeout=text).timeout == seconds
    for bad in ("soon", "-5s", 0, True, [1]):
        with pytest.raises(sweeper.SpecError, match="timeout"):
            spec(["ok"], timeout=bad)


@pytest.mark.timeout(240)
def test_crashes_and_timeouts_on_ray(tmp_path: Path, ray_session: Any) -> None:
    """A segfault or os._exit kills only its run (recorded failed, the worker replaced); a run past
    timeout: is killed and recorded as timeout; every other run completes."""
    # the clock starts when the run starts on its worker, so a slow worker start-up does not count
    s = spec(["ok", "exit", "segv", "sleep", "raise", "nan"], replicates=2, timeout="5s")
    sweep = sweeper.launch(s, results=tmp_path, backend="ray")
    table = sweep.table
    assert len(table) == 12 and not table.duplicated(["trial", "replicate"]).any()
    status = table.groupby("mode")["status"].agg(set).to_dict()
    assert status == {
        "ok": {"complete"},
        "nan": {"complete"},
        "raise": {"failed"},
        "exit": {"failed"},
        "segv": {"failed"},
        "sleep": {"timeout"},
    }
    for mode in ("exit", "segv"):
        errors = table.loc[table["mode"] == mode, "error"]
        assert errors.str.contains("the process running this run died").all(), errors.tolist()
    timed = table[table["mode"] == "sleep"]
    assert timed["error"].str.contains("timeout: 5s and was stopped").all()
    assert timed["duration_s"].between(5, 15).all()  # stopped, not waited for (it sleeps 60 s)


def test_timeouts_on_the_local_backend_count_from_the_run_start(tmp_path: Path) -> None:
    sweep = sweeper.launch(spec(["ok", "sleep", "raise"], timeout="2s"), results=tmp_path, backend="local")
    rows = by_mode(sweep.table)
    assert rows["sleep"]["status"] == "timeout" and 2 <= rows["sleep"]["duration_s"] < 5
    assert "timeout: 2s" in rows["sleep"]["error"]
    assert rows["ok"]["status"] == "complete" and rows["raise"]["status"] == "failed"
