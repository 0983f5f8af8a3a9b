"""Crash safety: SIGKILL the driver at random moments, relaunch, and the table stays whole.

After every kill the table must read without error and hold no duplicate (trial, replicate); in
the end it must hold exactly trials x replicates rows, with trial ids 0..trials-1, every replicate
of a trial sharing the trial's variables and replicate r the seed of replicate r.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sweeper
from sweeper.search.seeds import replicate_seeds

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TRIALS, REPLICATES, CYCLES = 60, 3, 5

SWEEP = f"""
experiment: crashy
objective: resume_objectives:quad
metrics: [loss: minimize]
variables:
  x: {{float: [0.0, 1.0]}}
  y: {{choice: [a, b]}}
search: {{method: tpe, trials: {TRIALS}, seed: 11}}
replicates: {REPLICATES}
"""


def launch(sweep_file: Path, results: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(sweep_file),
            "--backend",
            "local",
            "--results",
            str(results),
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def parts(folder: Path) -> int:
    trials = folder / "trials"
    return sum(1 for p in trials.iterdir() if p.suffix == ".parquet") if trials.is_dir() else 0


def check(folder: Path) -> int:
    table = sweeper.load(folder) if (folder / "trials").is_dir() else None
    if table is None or table.empty:
        return 0
    assert not table.duplicated(["trial", "replicate"]).any()
    assert set(table["status"]) == {"complete"}
    assert table["trial"].between(0, TRIALS - 1).all()
    assert table.groupby("trial")[["x", "y"]].nunique().max().max() == 1  # one variable set a trial
    seeds = replicate_seeds(11, REPLICATES)
    assert all(seeds[r] == s for r, s in zip(table["replicate"], table["seed"], strict=True))
    return len(table)


def test_sigkill_at_random_moments_loses_and_repeats_nothing(tmp_path: Path) -> None:
    sweep_file = tmp_path / "crashy.yaml"
    sweep_file.write_text(SWEEP)
    results, log = tmp_path / "results", tmp_path / "calls"
    log.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        "SWEEPER_TEST_LOG": str(log),
        "SWEEPER_TEST_SLEEP": "0.025",
    }
    folder = results / "crashy"
    rng = random.Random(2024)
    kills, rows_seen = 0, []
    for cycle in range(CYCLES):
        proc = launch(sweep_file, results, env)
        start_parts = parts(folder)
        if cycle == 0:  # anywhere, start-up included
            time.sleep(rng.uniform(0.2, 1.5))
        else:  # mid-sweep: after this launch wrote something, at a random moment
            deadline = time.monotonic() + 60
            while parts(folder) <= start_parts and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        kills += 1
        rows_seen.append(check(folder))
    final = launch(sweep_file, results, env)
    out, _ = final.communicate(timeout=240)
    assert final.returncode == 0, out.decode()
    assert kills >= 4, f"only {kills} kills landed before the sweep ended"
    assert rows_seen == sorted(rows_seen) and 0 < rows_seen[-1] < TRIALS * REPLICATES
    assert check(folder) == TRIALS * REPLICATES
    table = sweeper.load(folder)
    assert sorted(table["trial"].unique()) == list(range(TRIALS))
    calls = sum(1 for _ in log.iterdir())
    # Only runs in flight or not yet flushed at a kill run again (at most ~1 s of work a kill).
    assert calls - TRIALS * REPLICATES <= kills * 60
    print(
        f"\n{kills} kills; rows after each: {rows_seen}; {calls} runs executed for "
        f"{TRIALS * REPLICATES} rows ({calls - TRIALS * REPLICATES} reruns of lost in-flight runs)"
    )


RAY_SWEEP = """
experiment: crashy-ray
objective: resume_objectives:paced
metrics: [loss: minimize]
variables:
  x: {float: [0.0, 1.0]}
  pause: 0.1
search: {method: random, trials: 40, seed: 3}
replicates: 2
"""


def test_sigkill_of_a_ray_driver(tmp_path: Path, ray_session: Any) -> None:
    """The driver on a login node dies while the Ray cluster lives on: relaunch finishes the sweep."""
    sweep_file = tmp_path / "crashy-ray.yaml"
    sweep_file.write_text(RAY_SWEEP)
    # next to the sweep file, where the workers of an existing cluster look for it
    (tmp_path / "resume_objectives.py").write_text((HERE / "resume_objectives.py").read_text())
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable,
        "-m",
        "sweeper",
        "launch",
        str(sweep_file),
        "--address",
        address,
        "--results",
        str(tmp_path / "results"),
        "-q",
    ]
    folder = tmp_path / "results" / "crashy-ray"
    seen = []
    for _ in range(2):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        start_parts = parts(folder)
        deadline = time.monotonic() + 120
        while parts(folder) <= start_parts and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        table = sweeper.load(folder)
        assert not table.duplicated(["trial", "replicate"]).any()
        seen.append(len(table))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert out.returncode == 0, out.stderr
    table = sweeper.load(folder)
    assert len(table) == 80 and not table.duplicated(["trial", "replicate"]).any()
    assert sorted(table["trial"].unique()) == list(range(40))
    assert 0 < seen[0] <= seen[1] < 80
