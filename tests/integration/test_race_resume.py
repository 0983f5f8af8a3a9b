"""Adaptive replicates end to end: a race on local and on Ray, killed with SIGKILL and resumed,
ends with the same table as an uninterrupted race."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

import sweeper
from sweeper.spec.experiment import Racing
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TRIALS = 14
SWEEP = f"""
experiment: race
objective: racing_objectives:noisy
metrics: [loss: minimize]
variables:
  x: {{float: [0.0, 1.0]}}
  pause: 0.15
search: {{method: random, trials: {TRIALS}, seed: 5, deterministic: true}}
replicates: 6
"""
DRIVER = """
import dataclasses, sys
import sweeper
from sweeper.spec.model import Racing, load_spec
spec = dataclasses.replace(load_spec(sys.argv[1]), racing=Racing(2, 6))
sweeper.launch(spec, results=sys.argv[2], backend=sys.argv[3], address=sys.argv[4] or None)
"""
COLUMNS = ["trial", "replicate", "seed", "status", "x", "loss"]


def racing_spec(path: Path) -> Any:
    return dataclasses.replace(load_spec(path), racing=Racing(2, 6))


def rows(folder: Path) -> pd.DataFrame:
    table = sweeper.load(folder)[COLUMNS]
    return table.sort_values(["trial", "replicate"]).reset_index(drop=True)


def killed_and_resumed(tmp_path: Path, backend: str, address: str = "") -> pd.DataFrame:
    sweep, results = tmp_path / "race.yaml", tmp_path / f"killed-{backend}"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    cmd = [sys.executable, str(driver), str(sweep), str(results), backend, address]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    trials = results / "race" / "trials"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if trials.is_dir() and sum(1 for p in trials.iterdir() if p.suffix == ".parquet") >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()[0].decode()  # killed mid-race, not after it
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    partial = len(sweeper.load(results / "race"))
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert final.returncode == 0, final.stdout + final.stderr
    table = rows(results / "race")
    assert 0 < partial < len(table)
    return table


def test_a_race_killed_and_resumed_ends_as_an_uninterrupted_one(tmp_path: Path, ray_session: Any) -> None:
    sweep = tmp_path / "race.yaml"
    sweep.write_text(SWEEP)
    (tmp_path / "racing_objectives.py").write_text((HERE / "racing_objectives.py").read_text())
    whole = sweeper.launch(racing_spec(sweep), results=tmp_path / "whole", backend="local")
    expected = rows(whole.path)
    runs = expected.groupby("trial").size()
    assert len(runs) == TRIALS and set(runs) <= {2, 4, 6} and runs.min() == 2 and (runs == 6).sum() >= 2
    assert len(expected) < 0.7 * TRIALS * 6  # the race saved runs
    best = whole.best
    assert best is not None and best["n"] == 6  # the reported best ran every replicate
    assert whole.stats.best_trial == best["trial"]

    address = ray_session.get_runtime_context().gcs_address
    on_ray = sweeper.launch(racing_spec(sweep), results=tmp_path / "ray", backend="ray", address=address)
    pd.testing.assert_frame_equal(rows(on_ray.path), expected)
    pd.testing.assert_frame_equal(killed_and_resumed(tmp_path, "local"), expected)
    pd.testing.assert_frame_equal(killed_and_resumed(tmp_path, "ray", address), expected)


def test_a_pruned_replicate_ends_its_trials_race(tmp_path: Path) -> None:
    spec = load_spec(ROOT / "sweeps" / "curves.yaml")
    spec = dataclasses.replace(spec, racing=Racing(2, 6), replicates=6)
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    table = result.table
    pruned = table.groupby("trial")["status"].apply(lambda s: (s == "pruned").any())
    runs = table.groupby("trial").size()
    assert pruned.any() and (runs[pruned] < 6).all()  # a pruned trial never races on to max
    assert set(runs) <= {2, 4, 6} and (runs == 6).any()
    best = result.best
    assert best is not None and best["n"] == 6 and not pruned[best["trial"]]
