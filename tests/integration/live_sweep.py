"""A sweep that a test holds mid-way (tests/integration/live_objectives.py), for the live views."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

SWEEP = {
    "experiment": "live",
    "hypothesis": "y=a has a lower loss than y=b",
    "objective": "live_objectives:gated",
    "metrics": [{"loss": "minimize"}],
    "variables": {"x": {"choice": [0.0, 0.3, 0.6]}, "y": {"choice": ["a", "b"]}},
    "search": {"method": "grid"},
    "replicates": 4,
    "compare": {"variable": "y", "treatment": "a", "baseline": "b"},
}
RUNS = 24


def start(
    tmp: Path, *extra: str, pause_at: int = 8, **overrides: Any
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Launch the sweep with the gate closed; returns (driver process, its folder, the gate file).
    The driver's stderr goes to ``tmp/driver.err``."""
    sweep_file = tmp / "live.yaml"
    sweep_file.write_text(yaml.safe_dump({**SWEEP, **overrides}))
    (tmp / "log").mkdir()
    gate = tmp / "gate"
    gate.touch()
    env = {
        "TMPDIR": str(tmp),  # unless a test sets its own: a killed driver's staging copy stays in tmp
        **os.environ,
        "SWEEPER_TEST_LOG": str(tmp / "log"),
        "SWEEPER_TEST_GATE": str(gate),
        "SWEEPER_TEST_PAUSE_AT": str(pause_at),
        "SWEEPER_TEST_SLEEP": "0.15",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
    }
    with open(tmp / "driver.err", "wb") as err:  # the child holds its own copy
        proc = subprocess.Popen(
            [sys.executable, "-m", "sweeper", "launch", str(sweep_file), "--backend", "local", "-q", *extra]
            + ([] if "--results" in extra else ["--results", str(tmp / "results")]),
            env=env,
            cwd=tmp,
            stderr=err,
        )
    return proc, tmp / "results" / "live", gate


def wait_for(check: Any, what: str, timeout: float = 120.0) -> Any:
    """Poll ``check()`` until it returns something true; fail naming ``what`` after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
