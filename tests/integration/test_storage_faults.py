"""Storage faults mid-sweep (issue 12, item 14): a read-only trials/ folder and a disk that takes no
more bytes stop the sweep cleanly, keep what was written, say what happened and how to resume; the
resume finishes the sweep with every run exactly once. The full disk is a real one (a small tmpfs
mounted for the test, filled mid-sweep: ENOSPC, on the local backend and under Ray) where the tests
may mount, and a file size limit (EFBIG) everywhere."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

import sweeper
from tests.ray_cluster import RayCluster

HERE = Path(__file__).parent
TRIALS = 40
FAULT_AT = 15


def _sweep(folder: Path) -> Path:
    path = folder / "fault.yaml"
    path.write_text(
        "experiment: fault\nobjective: hostile_objectives:storage_fault\nmetrics: [{loss: minimize}]\n"
        "variables: {x: {float: [0, 1]}, y: {int: [0, 4]}, kind: {choice: [a, b]}}\n"
        f"search: {{method: random, trials: {TRIALS}, seed: 0}}\n"
    )
    return path


def _unprivileged() -> list[str]:
    """Root writes through any mode bits (CAP_DAC_OVERRIDE): run the sweep without those capabilities."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    drop = [setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]
    if setpriv is None or subprocess.run([*drop, "true"], check=False).returncode != 0:
        pytest.skip("root that cannot drop CAP_DAC_OVERRIDE (setpriv): a read-only folder binds no root")
    return drop


@contextlib.contextmanager
def _small_disk(where: Path) -> Iterator[None]:
    """A 16 MiB tmpfs mounted on ``where`` (empty), unmounted after: a file system that really fills."""
    where.mkdir(parents=True)
    mount = shutil.which("mount")
    done = subprocess.run(
        [mount or "mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mount is None or done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)  # busy: detach it now, freed later


def _sweeper(
    argv: list[str], env: dict[str, str], prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    assert argv[0] == "sweeper"
    cmd = [*prefix, sys.executable, "-m", "sweeper", *argv[1:]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False)


def _resume_hint(stderr: str) -> list[str]:
    found = re.search(r"then resume with: (.+)$", stderr, re.MULTILINE)
    assert found, stderr
    return shlex.split(found.group(1))


def _kept(stderr: str) -> int:
    """Runs the fault message says were kept, in trials/ and put aside."""
    kept = re.search(r"kept: (\d+) runs? in", stderr)
    aside = re.search(r"the last (\d+) finished runs? in", stderr)
    assert kept, stderr
    return int(kept.group(1)) + (int(aside.group(1)) if aside else 0)


@pytest.mark.parametrize(
    ("fault", "backend"), [("readonly", "local"), ("full", "local"), ("enospc", "local"), ("enospc", "ray")]
)
def test_a_storage_fault_stops_cleanly_and_the_resume_runs_each_run_once(
    tmp_path: Path, fault: str, backend: str
) -> None:
    results = tmp_path / "results"
    fault_env = {
        "FAULT": fault,
        "FAULT_AT": str(FAULT_AT),
        "FAULT_DIR": str(results / "fault" / "trials"),
        "FAULT_FILL": str(results / "filler"),
        "FAULT_ARM": str(tmp_path / "armed"),
    }
    (tmp_path / "armed").touch()
    with contextlib.ExitStack() as stack:
        if fault == "enospc":
            stack.enter_context(_small_disk(results))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
        if backend == "ray":  # its own cluster: its workers get the fault's settings
            cluster = RayCluster(tmp_path, nodes=1, cpus=2, extra_path=[str(HERE)], env=fault_env)
            env = stack.enter_context(cluster).env
        address = ["--address", cluster.address] if backend == "ray" else []
        _fault_and_resume(tmp_path, fault, backend, {**env, **fault_env}, address)


def _fault_and_resume(
    tmp_path: Path, fault: str, backend: str, env: dict[str, str], address: list[str]
) -> None:
    sweep = _sweep(tmp_path)
    results = tmp_path / "results"
    folder = results / "fault"
    prefix = _unprivileged() if fault == "readonly" else []
    argv = ["sweeper", "launch", str(sweep), "--results", str(results), "--backend", backend, *address]
    first = _sweeper(argv, env, prefix)
    err = first.stderr
    assert first.returncode == 2, err
    assert "Traceback" not in err and err.count("error:") == 1, err
    reason = {
        "readonly": "Permission denied (EACCES)",
        "full": "File too large (EFBIG)",
        "enospc": "No space left on device (ENOSPC)",
    }[fault]
    where = folder if fault == "enospc" else folder / "trials/part-"  # a full disk: any file first
    assert f"cannot write {where}" in err and reason in err, err
    assert f"free space on (or give write permission to) {folder}" in err
    hint = _resume_hint(err)
    assert hint == argv, hint  # literal: the same file, results root and backend
    record = json.loads((folder / "experiment.json").read_text())
    kept = _kept(err)
    if fault == "readonly":
        assert record["status"] == "stopped: storage error"
        # every run computed before the stop is kept: in trials/ or, beside it, in trials.unsaved/
        assert re.search(rf"finished runs? in {re.escape(str(folder / 'trials.unsaved'))}", err), err
        assert kept >= FAULT_AT
        status = _sweeper(["sweeper", "status", str(folder)], env)
        assert "fault: stopped: storage error" in status.stdout, status.stdout
        assert f"more finished runs wait in {folder / 'trials.unsaved'}" in status.stdout
        (folder / "trials").chmod(0o755)
    else:  # nothing more could be written, experiment.json included; status says what that means
        assert "could not be saved anywhere and run again on resume" in err
        assert "still says running (sweeper status calls it crashed)" in err
        assert record["status"] == "running"
        status = _sweeper(["sweeper", "status", str(folder)], env)
        assert "fault: crashed" in status.stdout and f"--backend {backend}" in status.stdout, status.stdout
    written = len(sweeper.load(folder))
    assert 0 < written <= kept
    if fault == "enospc":
        (results / "filler").unlink()  # the user frees space

    env["FAULT_AT"] = "0"  # no fault this time
    second = _sweeper(hint, env)
    assert second.returncode == 0, second.stderr
    table = sweeper.load(folder)
    assert len(table) == TRIALS and table["trial"].nunique() == TRIALS
    assert (table["status"] == "complete").all()
    assert not (folder / "trials.unsaved").exists()
    ran = int(re.search(r"this launch: (\d+) runs", second.stdout).group(1))  # type: ignore[union-attr]
    if fault == "readonly":
        assert kept + ran == TRIALS, (kept, ran)  # no computed run was lost and run again
    assert json.loads((folder / "experiment.json").read_text())["status"] == "finished"
