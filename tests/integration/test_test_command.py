"""README's test command must not change the machine: no package installs, no root daemons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_slurm_tests_skip_with_how_to_start_when_no_dev_slurm_runs(tmp_path: Path) -> None:
    """Pointed at a dev-Slurm folder where nothing runs, the Slurm tests skip; nothing is started."""
    state = tmp_path / "slurm"
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "SLURM_CONF")}
    env.update(SWEEPER_SLURM_DIR=str(state), SWEEPER_SLURM_PORT="29817")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "tests/integration/test_slurm.py",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "passed" not in out and "failed" not in out, out
    assert "the dev Slurm is not running (start it as root: bash cluster/slurm/dev-cluster.sh start)" in out
    assert not state.exists(), sorted(p.name for p in state.rglob("*"))  # no daemon, config or apt log
