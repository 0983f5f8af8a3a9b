"""Sweeps submitted as Ray Jobs to a real Ray head with its dashboard, started by this module.

The head runs without this checkout on its PYTHONPATH: the job must bring the objective (its
working_dir) and sweeper itself (py_modules) along, as it would to a cloud cluster.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

import sweeper
from sweeper.submit import rayjobs, record
from tests.integration import cluster_objectives

pytestmark = pytest.mark.timeout(240)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ray start --head --block`` with a dashboard on 127.0.0.1; ended by its PID at teardown."""
    temp = tmp_path_factory.mktemp("rayhead")
    dashboard = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    bindir = str(Path(sys.executable).parent)
    env.update(
        PATH=bindir + os.pathsep + env.get("PATH", ""),
        RAY_AUTH_MODE="disabled",
        RAY_USAGE_STATS_ENABLED="0",
        RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
    )
    cmd = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        f"--port={free_port()}",
        "--num-cpus=2",
        f"--temp-dir={temp}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
    ]
    log = open(temp / "head.log", "wb")  # noqa: SIM115 - closed at teardown
    head = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=temp)
    url = f"http://127.0.0.1:{dashboard}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/version", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"Ray head did not come up; see {temp / 'head.log'}:\n"
                    + (temp / "head.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        # The job server answers a little after /api/version does.
        while time.monotonic() < deadline:
            try:
                rayjobs.client(url).list_jobs()
                break
            except Exception:
                time.sleep(0.5)
        yield url
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(10)
        log.close()
        (temp / "ray_current_cluster").unlink(missing_ok=True)


def write_sweep(folder: Path, name: str, trials: int, pause: float) -> Path:
    return cluster_objectives.write_sweep(folder, name=name, trials=trials, pause=pause)


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["RAY_AUTH_MODE"] = "disabled"
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )


def test_submit_runs_the_sweep_on_the_cluster(tmp_path: Path, ray_head: str) -> None:
    sweep = write_sweep(tmp_path / "project", "rayjob", trials=5, pause=0.0)
    results = tmp_path / "shared results"
    done = cli("launch", str(sweep), "--submit", ray_head, "--results", str(results), "--wait", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "submitted Ray job sweeper-rayjob-" in done.stdout and "SUCCEEDED" in done.stdout
    folder = results / "rayjob"
    df = sweeper.load(folder)
    assert len(df) == 10 and set(df["status"]) == {"complete"}
    assert sorted(df["trial"].unique()) == list(range(5))
    sub = record.load(folder)
    assert sub is not None and sub.kind == "ray-job" and sub.address == ray_head
    assert rayjobs.status(ray_head, sub.job_id) == "SUCCEEDED"
    # The driver ran from the uploaded working_dir, with sweeper from py_modules.
    logs = rayjobs.client(ray_head).get_job_logs(sub.job_id)
    assert "rayjob: 5 trials, 10 runs" in logs


def test_a_job_none_of_whose_runs_completed_ends_failed(tmp_path: Path, ray_head: str) -> None:
    """As a local launch exits 1 when every run failed, so does the job's driver: Ray says FAILED."""
    sweep = write_sweep(tmp_path / "project", "rayjob-broken", trials=2, pause=0.0)
    sweep.write_text(sweep.read_text().replace("slow_quadratic", "always_fails"))
    results = tmp_path / "results"
    done = cli("launch", str(sweep), "--submit", ray_head, "--results", str(results), "--wait", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED" in done.stdout, done.stdout
    df = sweeper.load(results / "rayjob-broken")
    assert len(df) == 4 and set(df["status"]) == {"failed"}
    assert df["error"].str.contains("no loss for x=").all()
    sub = record.load(results / "rayjob-broken")
    assert sub is not None
    assert "no run completed" in rayjobs.client(ray_head).get_job_logs(sub.job_id)


def test_results_to_a_uri_are_uploaded(tmp_path: Path, ray_head: str) -> None:
    sweep = write_sweep(tmp_path / "project", "to-uri", trials=3, pause=0.0)
    bucket = tmp_path / "bucket"
    done = cli(
        "launch", str(sweep), "--submit", ray_head, "--results", f"file://{bucket}", "--wait", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ray job stop --address" in done.stdout  # no local folder to keep a record in
    df = sweeper.load(bucket / "to-uri")
    assert len(df) == 6 and set(df["status"]) == {"complete"}
    assert (bucket / "to-uri" / "experiment.json").is_file()


def test_cancel_stops_the_ray_job_and_keeps_finished_runs(tmp_path: Path, ray_head: str) -> None:
    sweep = write_sweep(tmp_path / "project", "stopped", trials=40, pause=0.5)
    results = tmp_path / "results"
    done = cli("launch", str(sweep), "--submit", ray_head, "--results", str(results), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = results / "stopped"
    deadline = time.monotonic() + 120
    rows = 0
    while rows < 2:
        assert time.monotonic() < deadline, "no runs finished in 120 s"
        try:
            rows = len(sweeper.load(folder))
        except sweeper.SweeperError:
            time.sleep(0.5)
    out = cli("cancel", str(folder), cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "now STOPPED" in out.stdout
    df = sweeper.load(folder)
    assert rows <= len(df) < 80 and not df.duplicated(["trial", "replicate"]).any()
    meta = sweeper.results.table.read_json(folder / "experiment.json")
    assert meta["status"] in ("interrupted", "stopped")  # stopped early, resumable
