"""Real sweeps through a real Slurm: cluster/slurm/dev-cluster.sh's two nodes on this host.

Each test submits with the CLI as a user would, lets Slurm start Ray on the allocation, and reads the
trial table the job wrote. Skipped, with how to start it, when the dev Slurm is not running; under
CI=true (.ci/run starts it) a missing cluster is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import sweeper
from sweeper.search.seeds import replicate_seeds
from sweeper.submit import record, sbatch, status_line
from tests.integration import cluster_objectives

pytestmark = [pytest.mark.slurm, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "cluster" / "slurm" / "dev-cluster.sh"


@pytest.fixture(scope="module")
def dev_slurm() -> Iterator[dict[str, str]]:
    """The dev Slurm when it is up (CI starts it in .ci/run); never started here: the test command
    must not install packages or start root daemons. Under CI=true a missing cluster is a failure."""
    env = dict(os.environ)
    running = subprocess.run(["bash", str(DEV), "status"], env=env, capture_output=True)
    if running.returncode != 0:
        message = f"the dev Slurm is not running (start it as root: bash {DEV.relative_to(REPO)} start)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests, but {message}")
        pytest.skip(message)
    conf = subprocess.run(["bash", str(DEV), "env"], env=env, capture_output=True, text=True, check=True)
    slurm_conf = conf.stdout.strip().split("=", 1)[1].strip("'\"")
    os.environ["SLURM_CONF"] = slurm_conf
    yield {**env, "SLURM_CONF": slurm_conf}


def write_sweep(folder: Path, *, name: str, trials: int, nodes: int, pause: float) -> Path:
    return cluster_objectives.write_sweep(
        folder, name=name, trials=trials, pause=pause, extra=f"slurm: {{profile: dev, nodes: {nodes}}}\n"
    )


def launch(
    sweep: Path, results: Path, env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", "launch", str(sweep), "--slurm", "--results", str(results), *args],
        env=env,
        cwd=cwd or sweep.parent,
        capture_output=True,
        text=True,
        timeout=200,
    )


def job_id(folder: Path) -> str:
    sub = record.load(folder)
    assert sub is not None and sub.kind == "slurm"
    return sub.job_id


def check_table(folder: Path, trials: int) -> None:
    df = sweeper.load(folder)
    assert len(df) == trials * 2, df[["trial", "replicate", "status"]]
    assert not df.duplicated(["trial", "replicate"]).any()
    assert sorted(df["trial"].unique()) == list(range(trials))
    assert set(df["status"]) == {"complete"}
    seeds = replicate_seeds(3, 2)
    assert all(row.seed == seeds[row.replicate] for row in df.itertuples())


def wait_rows(folder: Path, at_least: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            n = len(sweeper.load(folder))
        except sweeper.SweeperError:
            n = 0
        if n >= at_least:
            return n
        time.sleep(0.3)
    raise AssertionError(f"fewer than {at_least} rows in {folder} after {timeout_s} s")


def wait_state(job: str, states: set[str], timeout_s: float = 120) -> sbatch.JobState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        st = sbatch.state(job)
        if st.state in states:
            return st
        time.sleep(0.3)
    raise AssertionError(f"job {job} not in {states} after {timeout_s} s: {sbatch.state(job)}")


def test_one_node_sweep_with_hostile_paths(tmp_path: Path, dev_slurm: dict[str, str]) -> None:
    """Quotes, $(...), backticks and ; in every path: the job runs, and nothing gets injected."""
    nasty = "we ird $(touch INJECTED) `touch INJECTED` ; touch INJECTED 'q\" $HOME"
    sweep = write_sweep(tmp_path / f"sweeps {nasty}", name="one-node", trials=4, nodes=1, pause=0.0)
    results = tmp_path / f"results {nasty}"
    done = launch(sweep, results, dev_slurm, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = results / "one-node"
    assert f"results: {folder}" in done.stdout
    check_table(folder, trials=4)
    assert not list(tmp_path.rglob("INJECTED")) and not Path("INJECTED").exists()
    assert "slurm COMPLETED" in done.stderr  # the follow line shows the job state
    line = status_line(folder)
    assert line is not None and f"Slurm job {job_id(folder)}: COMPLETED" in line
    log = (folder / "slurm" / f"slurm-{job_id(folder)}.out").read_text()
    assert "1 Ray node(s) alive" in log and "ending 1 Ray step(s)" in log


def test_two_node_sweep_uses_both_ray_nodes(tmp_path: Path, dev_slurm: dict[str, str]) -> None:
    sweep = write_sweep(tmp_path / "s", name="two-nodes", trials=8, nodes=2, pause=0.4)
    done = launch(sweep, tmp_path / "results", dev_slurm, "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "results" / "two-nodes"
    check_table(folder, trials=8)
    nodes = set(sweeper.load(folder)["node"])
    assert len(nodes) == 2, nodes  # host/ray-node-id: runs landed on both Ray nodes
    assert "2 Ray node(s) alive" in (folder / "slurm" / f"slurm-{job_id(folder)}.out").read_text()


# What Slurm does to a job: warn it before the time limit (`--signal=B:USR1@grace_s`, sent here by
# hand), or preempt it (PreemptMode=REQUEUE: SIGTERM to every process, then requeue).
EVENTS = {
    "time-limit": (["scancel", "--batch", "--signal=USR1"], "received USR1"),
    "preemption": (["scontrol", "requeue"], "received TERM"),
}


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_requeued_job_resumes_and_loses_nothing(
    tmp_path: Path, dev_slurm: dict[str, str], event: str
) -> None:
    trials = 16
    sweep = write_sweep(tmp_path / "s", name="requeued", trials=trials, nodes=1, pause=0.5)
    done = launch(sweep, tmp_path / "results", dev_slurm)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "results" / "requeued"
    job = job_id(folder)
    before = wait_rows(folder, 4)
    command, said = EVENTS[event]
    subprocess.run([*command, job], check=True, env=dev_slurm)
    wait_state(job, {"PENDING", "REQUEUED"}, 60)
    # A requeued job waits 120 s before it is eligible again; the test does not. It still waits
    # 2 s: slurmd refuses a launch credential issued in the same second as the revocation.
    time.sleep(2)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True, env=dev_slurm)
    st = wait_state(job, {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}, 180)
    assert st.state == "COMPLETED" and st.restarts == 1, st
    check_table(folder, trials=trials)  # every run once, none failed: cancelled runs ran again
    log = (folder / "slurm" / f"slurm-{job}.out").read_text()
    assert said in log and "(restart 1)" in log and "resuming" in log and before >= 4
    if event == "time-limit":
        assert "requeueing job" in log  # the job requeued itself; preemption is Slurm's doing


def test_cancel_stops_the_job_and_keeps_finished_runs(tmp_path: Path, dev_slurm: dict[str, str]) -> None:
    sweep = write_sweep(tmp_path / "s", name="cancelled", trials=40, nodes=1, pause=0.5)
    done = launch(sweep, tmp_path / "results", dev_slurm)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "results" / "cancelled"
    job = job_id(folder)
    before = wait_rows(folder, 2)
    second = launch(sweep, tmp_path / "results", dev_slurm)  # one job per results folder
    assert second.returncode == 2 and f"being written by Slurm job {job}" in second.stderr
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "cancel", str(folder)],
        env=dev_slurm,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    st = sbatch.state(job)
    assert st.state == "CANCELLED" and st.restarts == 0, st  # stopped for good, not requeued
    assert "now CANCELLED" in out.stdout
    df = sweeper.load(folder)
    assert before <= len(df) < 80 and not df.duplicated(["trial", "replicate"]).any()
    line = status_line(folder)
    assert line is not None and "cancelled at" in line
    assert "received INT" in (folder / "slurm" / f"slurm-{job}.out").read_text()
