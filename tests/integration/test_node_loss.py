"""Lose a worker node mid-sweep: its runs are retried elsewhere, the sweep completes, no row is lost
or duplicated. The node goes down the way a lost machine does: its raylet is killed by PID, then its
workers (killing only the raylet loses nothing: a worker finishes its task without it)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sweeper
from tests.ray_cluster import RayCluster

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(240)]
HERE = Path(__file__).resolve().parent
TRIALS, REPLICATES = 12, 2


def _rows(folder: Path):
    try:
        return sweeper.load(folder)
    except sweeper.SweeperError:
        return None


def test_runs_on_a_killed_node_are_retried_elsewhere(tmp_path):
    (tmp_path / "scale_objectives.py").write_text((HERE / "scale_objectives.py").read_text())
    spec = {
        "experiment": "loss",
        "objective": "scale_objectives:nap",
        "metrics": [{"value": "minimize"}],
        "variables": {"x": {"float": [0.0, 1.0]}, "kind": {"choice": ["a", "b"]}, "seconds": {"const": 1.0}},
        "search": {"method": "random", "trials": TRIALS, "seed": 3},
        "replicates": REPLICATES,
    }
    (tmp_path / "loss.yaml").write_text(yaml.safe_dump(spec))
    results = tmp_path / "r" / "loss"
    with RayCluster(tmp_path, nodes=3, cpus=1) as cluster:
        driver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sweeper",
                "launch",
                str(tmp_path / "loss.yaml"),
                "--address",
                cluster.address,
                "--results",
                str(tmp_path / "r"),
                "-q",
            ],
            env=cluster.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # Wait until every node has finished a run, so runs are in flight on the victim.
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                df = _rows(results)
                if df is not None and "node" in df and df["node"].nunique() == 3:
                    break
                assert driver.poll() is None, driver.communicate()
                time.sleep(0.2)
            else:
                pytest.fail("the sweep never ran on all three nodes")
            killed_at = pd.Timestamp.now(tz="UTC")
            cluster.kill_node(2)
            _out, err = driver.communicate(timeout=150)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.communicate()
        assert driver.returncode == 0, err
    df = sweeper.load(results)
    assert len(df) == TRIALS * REPLICATES
    assert not df.duplicated(["trial", "replicate"]).any()
    assert (df["status"] == "complete").all(), df[df["status"] != "complete"]["error"].tolist()
    retried = df[df["attempt"] > 1]
    assert len(retried) >= 1, "no run was on the killed node when it died"
    # After the kill only the two surviving nodes start runs, and the retries ran there.
    survivors = set(df.loc[df["started_at"] > killed_at + pd.Timedelta(seconds=1), "node"])
    assert len(survivors) == 2 and set(df["node"]) - survivors, df[["node", "started_at"]]
    assert set(retried["node"]) <= survivors
