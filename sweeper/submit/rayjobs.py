"""Run a sweep as a Ray Job on a running Ray cluster (``ray up``, KubeRay, or any ``ray start``).

The sweep file's folder becomes the job's ``working_dir`` (so its objective modules travel with
it) and this sweeper package rides along as a ``py_modules`` entry, so driver and workers run the
same sweeper as the submitter. The job runs ``sweeper job`` (:mod:`sweeper.submit.job_entry`), which
writes results where the cluster can write: a path on its filesystem or a ``s3://`` / ``gs://`` URI.

``ray job stop`` (and ``sweeper cancel``) send SIGINT and wait up to a minute: the driver stops as
after Ctrl-C, and every finished run is in the table.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from sweeper.errors import SweeperError

# Large or private things a sweep folder may hold that the cluster does not need.
EXCLUDES = [".git", "__pycache__", "*.pyc", ".venv", "venv", "results", "*.parquet", ".ipynb_checkpoints"]
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def runtime_env(
    sweep_file: Path, *, env_vars: Mapping[str, str] | None = None, ship_sweeper: bool = True
) -> dict[str, Any]:
    """What the job carries: the sweep folder, this sweeper, and a clean stop on ``ray job stop``."""
    env = {
        "RAY_JOB_STOP_SIGNAL": "SIGINT",
        "RAY_JOB_STOP_WAIT_TIME_S": "60",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PYTHONUNBUFFERED": "1",
        **(env_vars or {}),
    }
    out: dict[str, Any] = {
        "working_dir": str(sweep_file.resolve().parent),
        "excludes": EXCLUDES,
        "env_vars": env,
    }
    if ship_sweeper:
        out["py_modules"] = [str(Path(__file__).resolve().parents[1])]  # the sweeper package
    return out


def entrypoint(sweep_file: Path, results: str, *, python: str = "python") -> str:
    """The job's shell command; it runs in the unpacked working_dir, next to the sweep file."""
    argv = [python, "-m", "sweeper", "job", sweep_file.name, "--results", results]
    return shlex.join(argv)


def check_results(results: str) -> str:
    """Results must name a place the cluster writes to, not a folder only this machine has."""
    if "://" in results:
        return results
    if not Path(results).is_absolute():
        raise SweeperError(
            f"--results {results!r} is relative; on a Ray cluster it would land in the job's "
            "temporary working folder and be lost\n  fix: give an absolute path that the cluster's "
            "head can write (a shared volume), or a URI such as s3://bucket/results or gs://bucket/results"
        )
    return results


def client(address: str) -> Any:
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise SweeperError(
            "submitting to a Ray cluster needs Ray's Jobs API\n  fix: pip install "
            "'ray[default]' (or sweeper[cluster])"
        ) from None
    try:
        return JobSubmissionClient(address)
    except Exception as exc:
        raise SweeperError(
            f"cannot reach the Ray dashboard at {address}: {exc}\n  fix: check the "
            "address (http://HEAD:8265), that the dashboard runs (ray start --head "
            "--dashboard-host 0.0.0.0), and any port forward"
        ) from None


def submit(
    address: str,
    sweep_file: Path,
    results: str,
    *,
    experiment: str,
    env_vars: Mapping[str, str] | None = None,
    python: str = "python",
    ship_sweeper: bool = True,
) -> str:
    """Submit the sweep; return the job's submission id."""
    jobs = client(address)
    import uuid

    stamp = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"  # unique, and sorts by time
    return str(
        jobs.submit_job(
            entrypoint=entrypoint(sweep_file, check_results(results), python=python),
            runtime_env=runtime_env(sweep_file, env_vars=env_vars, ship_sweeper=ship_sweeper),
            submission_id=f"sweeper-{experiment}-{stamp}",
            metadata={"sweeper_experiment": experiment, "sweeper_results": results},
        )
    )


def status(address: str, job_id: str) -> str:
    """Ray's word for the job: PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED."""
    return str(client(address).get_job_status(job_id).value)


def stop(address: str, job_id: str, *, wait_s: float = 90.0) -> str:
    """Ask the job to stop (SIGINT to the driver, see module doc) and wait until it has."""
    jobs = client(address)
    jobs.stop_job(job_id)
    deadline = time.monotonic() + wait_s
    state = str(jobs.get_job_status(job_id).value)
    while state not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.5)
        state = str(jobs.get_job_status(job_id).value)
    return state


def follow(address: str, job_id: str, *, stream: TextIO | None = None, interval_s: float = 1.0) -> str:
    """Print the job's output as it comes (the driver's progress line included); return the end state."""
    stream = stream or sys.stdout
    jobs = client(address)
    shown = 0
    while True:
        state = str(jobs.get_job_status(job_id).value)
        logs = jobs.get_job_logs(job_id)
        if len(logs) > shown:
            stream.write(logs[shown:])
            stream.flush()
            shown = len(logs)
        if state in TERMINAL:
            return state
        time.sleep(interval_s)
