"""Ctrl-C: the first stops launching and lets running runs finish; the second cancels them.

Each test sends SIGINT to a real `python -m sweeper launch` process and checks what it kept.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sweeper

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def write_sweep(folder: Path, trials: int) -> Path:
    path = folder / "slow.yaml"
    path.write_text(f"""
experiment: slow
objective: resume_objectives:quad
metrics: [loss: minimize]
variables:
  x: {{float: [0.0, 1.0]}}
  y: {{choice: [a, b]}}
search: {{method: tpe, trials: {trials}, seed: 5}}
""")
    return path


def start(
    sweep: Path, results: Path, log: Path, sleep: float, backend: str, slow: Path | None = None
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        "SWEEPER_TEST_LOG": str(log),
        "SWEEPER_TEST_SLEEP": str(sleep),
        "SWEEPER_TEST_SLOW": str(slow or ""),
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(sweep),
            "--backend",
            backend,
            "--results",
            str(results),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def calls(log: Path) -> int:
    return sum(1 for _ in log.iterdir())


def wait_for_calls(log: Path, n: int, proc: subprocess.Popen[str], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while calls(log) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep did not start runs in time"
        time.sleep(0.05)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    log = tmp_path / "calls"
    log.mkdir()
    return tmp_path / "results", log, tmp_path


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_first_ctrl_c_lets_running_runs_finish_then_resume_completes(
    setup: tuple[Path, Path, Path], backend: str
) -> None:
    results, log, tmp = setup
    trials = 12
    sweep = write_sweep(tmp, trials)
    proc = start(sweep, results, log, 1.0, backend)
    wait_for_calls(log, 3, proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "no new runs; waiting for the" in err and "Ctrl-C again" in err
    assert "waiting for" in err  # the countdown in the progress line
    assert f"resume with: sweeper launch {sweep} --results {results} --backend {backend}" in err
    folder = results / "slow"
    table = sweeper.load(folder)
    started = calls(log)
    assert len(table) == started < trials  # every run that had started finished and was recorded
    assert (table["status"] == "complete").all()
    assert json.loads((folder / "experiment.json").read_text())["status"] == "interrupted"

    again = start(sweep, results, log, 0.0, "local")
    _out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    final = sweeper.load(folder)
    assert len(final) == trials and not final.duplicated(["trial", "replicate"]).any()
    assert calls(log) == trials  # nothing ran twice


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_second_ctrl_c_cancels_running_runs_and_keeps_finished_ones(
    setup: tuple[Path, Path, Path], backend: str
) -> None:
    results, log, tmp = setup
    sweep = write_sweep(tmp, 20)
    proc = start(sweep, results, log, 0.2, backend, slow=tmp / "slow")
    folder = results / "slow"
    wait_for_calls(log, 1, proc)
    deadline = time.monotonic() + 60
    while not (folder / "trials").is_dir() or not any((folder / "trials").iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    (tmp / "slow").touch()  # runs that start from now on take 30 s
    n = calls(log)
    wait_for_calls(log, n + 1, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 15
    assert "cancelling the running runs" in err and "resume with:" in err
    table = sweeper.load(folder)
    assert len(table) >= 1 and (table["status"] == "complete").all()
    assert len(table) < calls(log)  # the slow runs were cancelled, not recorded
    assert json.loads((folder / "experiment.json").read_text())["status"] == "interrupted"


def test_sigterm_stops_gently_like_the_first_ctrl_c(setup: tuple[Path, Path, Path]) -> None:
    """Slurm and container runtimes send SIGTERM before killing: treat it as the first Ctrl-C."""
    results, log, tmp = setup
    sweep = write_sweep(tmp, 12)
    proc = start(sweep, results, log, 0.5, "local")
    wait_for_calls(log, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "SIGTERM: no new runs" in err and "resume with:" in err
    assert len(sweeper.load(results / "slow")) == calls(log) < 12
