"""`sweeper status DIR`: counts, best so far, runs in flight, and whether it can be resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.errors import SweeperError
from sweeper.results.status import experiment_status
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SWEEP = """
experiment: watched
objective: resume_objectives:paced
metrics: [loss: minimize]
variables:
  x: {float: [0.0, 1.0]}
  pause: 0.5
search: {method: tpe, trials: 40, seed: 2}
replicates: 2
"""


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_status_of_a_finished_experiment(tmp_path: Path) -> None:
    spec = load_spec(
        {
            "experiment": "done",
            "objective": "resume_objectives:quad",
            "metrics": [{"loss": "minimize"}],
            "variables": {"x": {"float": [0.0, 1.0]}, "y": {"choice": ["a", "b"]}},
            "search": {"method": "random", "trials": 5, "seed": 0},
            "replicates": 2,
        },
        root=HERE,
    )
    sweep = sweeper.launch(spec, results=tmp_path, backend="local")
    out = cli("status", str(tmp_path / "done"))
    assert out.returncode == 0, out.stderr
    assert "done: finished" in out.stdout and "runs: 10/10 recorded (10 complete)" in out.stdout
    assert f"best so far: trial {sweep.best['trial']}" in out.stdout  # type: ignore[index]
    assert "in flight: 0" in out.stdout and "resumable: yes - all runs done" in out.stdout


def test_status_while_running_then_after_a_crash(tmp_path: Path, ray_session: Any) -> None:
    """A live driver shows its runs in flight and holds the folder; after SIGKILL it is resumable."""
    sweep = tmp_path / "watched.yaml"
    sweep.write_text(SWEEP)
    # next to the sweep file, where workers of an existing cluster look for it
    (tmp_path / "resume_objectives.py").write_text((HERE / "resume_objectives.py").read_text())
    address = ray_session.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(sweep),
            "--results",
            str(tmp_path),
            "--address",
            address,
            "-q",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    folder = tmp_path / "watched"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            st = experiment_status(folder) if (folder / "driver.json").is_file() else None
            if st is not None and st.state == "running" and st.rows > 0 and st.running > 0:
                break
            time.sleep(0.2)
        out = cli("status", str(folder))
        assert "watched: running" in out.stdout and "driver: pid " in out.stdout, out
        assert "in flight: 0" not in out.stdout
        assert "resumable: no - a driver is running it now" in out.stdout
        second = cli("launch", str(sweep), "--results", str(tmp_path), "--backend", "local", "-q")
        assert second.returncode == 2 and "is being run by another sweeper driver" in second.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    st = experiment_status(folder)
    assert st.state == "crashed" and st.running == 0 and st.resumable
    assert f"{80 - st.rows} of 80 runs left" in st.note and "sweeper launch" in st.note
    out = cli("status", str(folder))
    assert "watched: crashed" in out.stdout and "resumable: yes" in out.stdout


def test_status_of_a_folder_that_is_not_an_experiment(tmp_path: Path) -> None:
    with pytest.raises(SweeperError, match="not a results folder"):
        experiment_status(tmp_path)
    out = cli("status", str(tmp_path))
    assert out.returncode == 2 and "not a results folder" in out.stderr


def test_status_names_a_damaged_table(tmp_path: Path) -> None:
    spec = load_spec(
        {
            "experiment": "dmg",
            "objective": "resume_objectives:quad",
            "metrics": [{"loss": "minimize"}],
            "variables": {"x": {"float": [0.0, 1.0]}, "y": {"choice": ["a", "b"]}},
            "search": {"method": "random", "trials": 3},
        },
        root=HERE,
    )
    sweeper.launch(spec, results=tmp_path, backend="local")
    (tmp_path / "dmg" / "trials" / "part-000077.parquet").write_bytes(b"PAR1 not really")
    out = cli("status", str(tmp_path / "dmg"))
    assert out.returncode == 0, out.stderr
    assert "resumable: no - the trial table is damaged" in out.stdout
    assert "part-000077.parquet" in out.stdout


def test_a_fresh_heartbeat_from_another_host_counts_as_a_live_driver(tmp_path: Path) -> None:
    """Flocks may not cross a shared filesystem (NFS): a recent heartbeat from elsewhere also holds."""
    import datetime as dt
    import json

    from sweeper.results.lock import DriverLock, is_locked

    folder = tmp_path / "exp"
    folder.mkdir()
    now = dt.datetime.now(dt.UTC)
    record = {
        "state": "running",
        "pid": 1,
        "host": "node-elsewhere",
        "running": 3,
        "heartbeat_at": now.isoformat(timespec="seconds"),
    }
    (folder / "driver.json").write_text(json.dumps(record))
    assert is_locked(folder)
    with pytest.raises(SweeperError, match="pid 1 on node-elsewhere"):
        DriverLock(folder).acquire()
    record["heartbeat_at"] = (now - dt.timedelta(minutes=5)).isoformat(timespec="seconds")
    (folder / "driver.json").write_text(json.dumps(record))
    assert not is_locked(folder)  # a stale heartbeat: that driver died
    DriverLock(folder).acquire().release()
