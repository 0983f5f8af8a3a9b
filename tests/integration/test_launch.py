"""End-to-end sweeps on the local backend and a real Ray, checked row by row."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import sweeper
from sweeper.results.failures import describe_errors
from sweeper.search.seeds import replicate_seeds
from tests.conftest import REPO, sweep_spec
from tests.objectives import quadratic

COLUMNS = [
    "trial",
    "replicate",
    "seed",
    "status",
    "stage",
    "x",
    "y",
    "kind",
    "loss",
    "x_abs",
    "started_at",
    "ended_at",
    "duration_s",
    "node",
    "attempt",
    "error",
]


def _check_table(df: pd.DataFrame, trials: int, replicates: int) -> None:
    assert list(df.columns) == COLUMNS
    assert len(df) == trials * replicates
    assert not df.duplicated(["trial", "replicate"]).any()
    assert sorted(df["trial"].unique()) == list(range(trials))
    seeds = replicate_seeds(0, replicates)
    for row in df.itertuples():
        assert row.seed == seeds[row.replicate]  # replicate r has the same seed in every trial
        assert row.status == "complete" and pd.isna(row.error)
        assert row.loss == pytest.approx(quadratic(row.x, row.y, row.kind, row.seed)["loss"])
        assert row.x_abs == pytest.approx(abs(row.x))
        assert row.started_at <= row.ended_at and row.duration_s >= 0
        assert row.attempt == 1 and row.node
    per_trial = df.groupby("trial")[["x", "y", "kind"]].nunique()
    assert (per_trial == 1).all().all()  # every replicate of a trial ran the same variable set


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_sweep_writes_the_trial_table(tmp_path, backend, request):
    if backend == "ray":
        request.getfixturevalue("ray_session")
    result = sweeper.launch(sweep_spec(), results=tmp_path, backend=backend)
    df = sweeper.load(tmp_path / "t")
    _check_table(df, trials=6, replicates=2)
    assert result.path == tmp_path / "t"
    best = result.best
    means = df.groupby("trial")["loss"].mean()
    assert best["trial"] == means.idxmin() and best["mean"] == pytest.approx(means.min())
    assert best["n"] == 2 and set(best["params"]) == {"x", "y", "kind"}
    assert result.stats.runs_done == 12 and result.stats.counts == {"complete": 12}
    meta = sweeper.results.table.read_json(tmp_path / "t" / "experiment.json")
    assert meta["status"] == "finished" and meta["spec"] == sweep_spec()
    assert meta["versions"]["optuna"] and meta["versions"]["ray"]
    if backend == "ray":
        assert all("/" in n for n in df["node"])  # host/ray-node-id


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_workers_prints_are_kept_with_its_run(tmp_path, backend, request, capfd):
    """On Ray no screen shows a worker's output: each run's prints go to its stdout.log / stderr.log
    (a failed run's too). In-process (local) they reach the terminal, for debugging, and no file."""
    if backend == "ray":
        request.getfixturevalue("ray_session")
    spec = sweep_spec(objective="objectives:chatty", metrics=[{"loss": "minimize"}], replicates=1)
    spec["search"] = {"method": "random", "trials": 12, "seed": 0}
    df = sweeper.launch(spec, results=tmp_path, backend=backend).table
    shown = capfd.readouterr()
    assert (df["status"] == "failed").any() and (df["kind"] == "b").any()
    for row in df.itertuples():
        folder = tmp_path / "t" / "artifacts" / f"trial-{row.trial}" / f"rep-{row.replicate}"
        line = f"training x={row.x} y={row.y} seed={row.seed}\n"
        if backend == "local":
            assert line in shown.out and not folder.exists()
            continue
        assert line not in shown.out and (folder / "stdout.log").read_text() == line
        warned = (folder / "stderr.log").read_text() if (folder / "stderr.log").exists() else None
        assert warned == (f"warning: kind b at y={row.y}\n" if row.kind == "b" else None)
        assert (row.status == "failed") == (row.y == 4)
    # `sweeper errors` points at a failed run's output where it was kept
    first = df[df["status"] == "failed"].iloc[0]
    kept = tmp_path / "t" / "artifacts" / f"trial-{first['trial']}" / f"rep-{first['replicate']}"
    text = describe_errors(tmp_path / "t")
    assert "RuntimeError: diverged" in text
    assert (f"   its output: {kept / 'stdout.log'}" in text) == (backend == "ray")


def test_same_spec_same_variable_sets_and_seeds(tmp_path):
    a = sweeper.launch(sweep_spec(), results=tmp_path / "a", backend="local").table
    b = sweeper.launch(sweep_spec(), results=tmp_path / "b", backend="local").table
    cols = ["trial", "replicate", "seed", "x", "y", "kind", "loss"]
    pd.testing.assert_frame_equal(a[cols], b[cols])


def test_deterministic_tpe_gives_the_same_trials_on_any_number_of_workers(tmp_path, ray_session):
    spec = sweep_spec(
        search={"method": "tpe", "trials": 16, "seed": 2, "deterministic": True, "concurrency": 3},
        replicates=1,
    )
    local = sweeper.launch(spec, results=tmp_path / "local", backend="local").table
    on_ray = sweeper.launch(spec, results=tmp_path / "ray", backend="ray").table
    cols = ["trial", "x", "y", "kind", "loss"]
    pd.testing.assert_frame_equal(local[cols], on_ray[cols])


def test_conditional_variables_are_null_when_inactive(tmp_path):
    spec = sweep_spec(
        objective="objectives:conditional",
        metrics=[{"score": "maximize"}],
        variables={
            "model": {"choice": ["custom", "resnet50"]},
            "width": {"int": [16, 64], "when": {"model": "custom"}},
            "depth": {"int": [18, 50], "when": {"model": "resnet50"}},
        },
        search={"method": "random", "trials": 12, "seed": 0},
        replicates=1,
    )
    df = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert set(df["model"]) == {"custom", "resnet50"}
    custom = df[df["model"] == "custom"]
    resnet = df[df["model"] == "resnet50"]
    assert custom["width"].notna().all() and custom["depth"].isna().all()
    assert resnet["depth"].notna().all() and resnet["width"].isna().all()
    assert (custom["score"] == custom["width"]).all() and (resnet["score"] == resnet["depth"]).all()
    assert str(df["width"].dtype) == "Int64"


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = sweep_spec(
        objective="objectives:flaky",
        metrics=[{"loss": "minimize"}],
        search={"method": "random", "trials": 20, "seed": 0},
    )
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    df = result.table
    assert len(df) == 40
    failed = df[df["status"] == "failed"]
    assert len(failed) and (failed["y"] == 3).all()
    assert failed["error"].str.contains("ValueError: y=3 is broken").all()
    assert failed["loss"].isna().all()
    assert (df[df["y"] != 3]["status"] == "complete").all()
    assert result.best["params"]["y"] != 3


def test_nan_metric_is_recorded_not_fatal(tmp_path):
    spec = sweep_spec(
        objective="objectives:nan_for_b",
        metrics=[{"loss": "minimize"}],
        search={"method": "tpe", "trials": 12, "seed": 0},
        replicates=1,
    )
    df = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert df[df["kind"] == "b"]["loss"].isna().all()
    assert len(df) == 12


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args], cwd=cwd, capture_output=True, text=True, timeout=240
    )


def test_cli_runs_the_quickstart_on_embedded_ray(tmp_path):
    out = _cli("launch", str(REPO / "sweeps" / "quickstart.yaml"), "--results", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "quickstart: 30 trials, 90 runs (90 complete)" in out.stdout
    assert "best: trial" in out.stdout and "test_mse=" in out.stdout
    assert "trials 30/30" in out.stderr  # the final progress line
    df = sweeper.load(tmp_path / "quickstart")
    assert len(df) == 90 and (df["status"] == "complete").all()
    # the toy data has a known optimum: the best trials recover the true slope
    best = df.groupby("trial")[["test_mse", "slope_error"]].mean().sort_values("test_mse").iloc[0]
    assert best["slope_error"] < 0.2 and best["test_mse"] < 0.35


def test_cli_bad_input_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "experiment: x\nobjective: objectives:quadratic\nmetrics: [{loss: minimize}]\n"
        "variables: {x: {float: [1.0, 0.0]}}\nsearch: {method: random, trials: 2}\n"
    )
    out = _cli("launch", str(bad), "--backend", "local", cwd=tmp_path)
    assert out.returncode == 2
    assert f"{bad}:4:17: variables.x.float: low > high" in out.stderr and "fix:" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_unreachable_cluster_address_exits_2_in_seconds(tmp_path, scheme):
    """Ray alone would wait minutes and end in a traceback; sweeper probes the address first."""
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"{scheme}127.0.0.1:{port}"
    started = time.monotonic()
    out = _cli(
        "launch",
        str(REPO / "sweeps" / "quickstart.yaml"),
        "--address",
        address,
        "--results",
        str(tmp_path),
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr
    assert f"Ray address {address}: cannot join" in out.stderr and "ray start --head" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - started < 60  # no hang: Ray alone gives up after ~4 min


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("objectives:returns_text", "not a number or a dict of numbers"),
        ("nowhere:train", "cannot import module 'nowhere'"),
        ("objectives:missing", "has no function 'missing'"),
    ],
)
def test_unusable_objective_exits_2(tmp_path, objective, message):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"experiment: x\nobjective: {objective}\nmetrics: [{{loss: minimize}}]\n"
        "variables: {x: {float: [0.0, 1.0]}, y: {int: [0, 1]}, kind: {choice: [a]}}\n"
        "search: {method: random, trials: 3}\n"
    )
    out = _cli("launch", str(spec), "--backend", "local", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_signature_mismatch_is_refused_before_any_run(tmp_path):
    spec = sweep_spec(
        variables={
            "x": {"float": [0, 1]},
            "y": {"int": [0, 1]},
            "kind": {"choice": ["a"]},
            "extra": {"int": [0, 1]},
        }
    )
    with pytest.raises(sweeper.ObjectiveError, match="no parameter 'extra'"):
        sweeper.launch(spec, results=tmp_path, backend="local")
    assert not (tmp_path / "t" / "trials").exists()


def test_table_is_readable_while_the_sweep_runs(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "experiment: slow\nobjective: objectives:slow\nmetrics: [{loss: minimize}]\n"
        "variables: {x: {float: [0.0, 1.0]}, y: {int: [0, 1]}, kind: {choice: [a]}}\n"
        "search: {method: random, trials: 80}\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(spec),
            "--backend",
            "local",
            "-q",
            "--results",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        seen = 0
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if (tmp_path / "slow" / "trials").is_dir():
                seen = max(seen, len(sweeper.load(tmp_path / "slow")))
                if 0 < seen < 80:
                    break
            time.sleep(0.2)
        assert 0 < seen < 80, "expected a partial table mid-sweep"
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.communicate()
    assert len(sweeper.load(tmp_path / "slow")) == 80
    files = [p.name for p in (tmp_path / "slow" / "trials").iterdir()]
    assert len(files) == 1 and files[0].startswith("compact-")  # parts compacted at the end


def test_digits_hypothesis_example_runs(tmp_path):
    pytest.importorskip("sklearn")
    spec = sweeper.load_spec(REPO / "sweeps" / "digits.yaml")
    raw = {**spec.raw, "search": {"method": "random", "trials": 4, "seed": 0}, "replicates": 2}
    small = sweeper.spec.model.parse_spec(raw, source_name=spec.source, root=spec.root)
    df = sweeper.launch(small, results=tmp_path, backend="local").table
    assert len(df) == 8 and (df["status"] == "complete").all()
    assert df["accuracy"].between(0.8, 1.0).all()
