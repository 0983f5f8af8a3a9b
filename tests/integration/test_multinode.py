"""A sweep across a real two-node Ray cluster on 127.0.0.1, driven by the CLI with --address.

One module-scoped cluster: a head with 1 CPU, and a worker node with 1 CPU, 1 declared GPU and a
custom resource ``special``. Placement is checked from the table's ``node`` column.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

import sweeper
from tests.ray_cluster import RayCluster

pytestmark = [pytest.mark.multinode, pytest.mark.timeout(240)]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Workers inherit every GPU of the host; a run must see only those Ray gave it.
    c = RayCluster(tmp_path_factory.mktemp("cluster"), nodes=2, cpus=1, env={"CUDA_VISIBLE_DEVICES": "0,1"})
    try:
        c.start(workers=[{"cpus": 1, "gpus": 1, "resources": {"special": 1}}])
        yield c
    finally:
        c.stop()


def _sweep(folder: Path, name: str, trials: int, **extra) -> Path:
    spec = {
        "experiment": name,
        "objective": "scale_objectives:nap",
        "metrics": [{"value": "minimize"}, {"gpu": "maximize"}, {"gpus_seen": "maximize"}],
        "variables": {"x": {"float": [0.0, 1.0]}, "kind": {"choice": ["a", "b"]}},
        "search": {"method": "random", "trials": trials, "seed": 1},
        **extra,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    # The objective lives next to the tests, not next to the sweep file.
    (folder / "scale_objectives.py").write_text((HERE / "scale_objectives.py").read_text())
    return path


def _launch(cluster: RayCluster, sweep: Path, results: Path, timeout: float = 150):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(sweep),
            "--address",
            cluster.address,
            "--results",
            str(results),
            "-q",
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _table(results: Path, name: str) -> pd.DataFrame:
    df = sweeper.load(results / name)
    assert not df.duplicated(["trial", "replicate"]).any()
    return df


def test_sweep_uses_both_nodes(cluster, tmp_path):
    out = _launch(cluster, _sweep(tmp_path, "both", 16, replicates=2), tmp_path / "r")
    assert out.returncode == 0, out.stderr
    df = _table(tmp_path / "r", "both")
    assert len(df) == 32 and (df["status"] == "complete").all()
    assert df["node"].nunique() == 2, df["node"].value_counts()
    assert (df["attempt"] == 1).all()
    assert (df["gpus_seen"] == 0).all()  # no GPUs asked for, none visible


def test_python_api_keeps_the_current_connection_and_the_cluster(cluster, tmp_path):
    """Inside a connected driver (as in a Ray job) launch() uses that connection and leaves it open;
    the cluster it did not start keeps running."""
    sweep = _sweep(tmp_path, "api", 6)
    code = f"""
import ray, sweeper
ray.init(address={cluster.address!r}, logging_level="error")
s = sweeper.launch({str(sweep)!r}, results={str(tmp_path / "r")!r}, backend="ray")
assert ray.is_initialized(), "sweeper shut down a connection it did not open"
print(len(s.table), sum(n["Alive"] for n in ray.nodes()))
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "2"]
    cluster.wait_for_nodes(2, timeout=30)  # still up for the next driver


def test_ray_client_address(cluster, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(_sweep(tmp_path, "client", 6)),
            "--address",
            cluster.client_address,
            "--results",
            str(tmp_path / "r"),
            "-q",
        ],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert out.returncode == 0, out.stderr + cluster.logs("ray_client_server*")
    assert len(_table(tmp_path / "r", "client")) == 6


def test_address_auto_finds_the_cluster_from_ray_address(cluster, tmp_path):
    """`--address auto` resolves as Ray does: $RAY_ADDRESS first (never /tmp/ray, which is shared)."""
    special = {"cpus": 1, "custom": {"special": 1}}  # only this cluster's worker node has it
    sweep = _sweep(tmp_path, "auto", 4, resources=special)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(sweep),
            "--address",
            "auto",
            "--results",
            str(tmp_path / "r"),
            "-q",
        ],
        env={**cluster.env, "RAY_ADDRESS": cluster.address},
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert len(_table(tmp_path / "r", "auto")) == 4


def test_resources_depend_on_variables(cluster, tmp_path):
    """kind=b runs ask for the custom resource only the worker node has; kind=a runs ask for none."""
    resources = {"cpus": 1, "custom": {"special": {"when": {"kind": "b"}, "value": 1}}}
    out = _launch(cluster, _sweep(tmp_path, "custom", 12, resources=resources), tmp_path / "r")
    assert out.returncode == 0, out.stderr
    df = _table(tmp_path / "r", "custom")
    assert len(df) == 12 and set(df["kind"]) == {"a", "b"}
    b_nodes = set(df.loc[df["kind"] == "b", "node"])
    assert len(b_nodes) == 1  # all on the node that has `special`
    assert df["node"].nunique() == 2


def test_fractional_gpus_share_one_gpu(cluster, tmp_path):
    """gpus: 0.25 puts four runs on the worker's one GPU at once, each seeing only that GPU."""
    resources = {"cpus": 0.25, "gpus": 0.25}
    variables = {"x": {"float": [0.0, 1.0]}, "kind": {"choice": ["a", "b"]}, "seconds": {"const": 1.5}}
    out = _launch(
        cluster, _sweep(tmp_path, "gpu", 8, resources=resources, variables=variables), tmp_path / "r"
    )
    assert out.returncode == 0, out.stderr
    df = _table(tmp_path / "r", "gpu")
    assert len(df) == 8 and df["node"].nunique() == 1  # only the worker node has a GPU
    assert (df["gpu"] == 0).all() and (df["gpus_seen"] == 1).all()  # CUDA_VISIBLE_DEVICES=0
    starts, ends = df["started_at"], df["ended_at"]
    overlap = max(int(((starts <= t) & (ends > t)).sum()) for t in starts)
    assert overlap == 4, df[["started_at", "ended_at"]]


def test_more_than_any_node_has_fails_early(cluster, tmp_path):
    """Two CPUs per run: the cluster has two in all but no node has two, so refuse at once."""
    out = _launch(cluster, _sweep(tmp_path, "big", 4, resources={"cpus": 2}), tmp_path / "r", timeout=90)
    assert out.returncode == 2
    assert "asks for 2 CPU" in out.stderr and "largest has 1 CPU" in out.stderr, out.stderr
    assert "fix:" in out.stderr
