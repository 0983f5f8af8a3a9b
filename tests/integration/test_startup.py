"""Start-up: a launch with nothing to run never starts Ray; ``--profile`` says where the time went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.backends import ray as ray_backend
from sweeper.cli import main
from tests.conftest import sweep_spec


def test_resume_with_nothing_left_never_starts_ray(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = sweeper.load_spec(sweep_spec(), root=Path(__file__).parents[1])
    first = sweeper.launch(spec, results=tmp_path, backend="local")
    assert first.stats.runs_done == 12

    def refuse(address: str | None) -> None:
        raise AssertionError("Ray was started for a sweep with nothing left to run")

    monkeypatch.setattr(ray_backend, "connect", refuse)
    capsys.readouterr()
    again = sweeper.launch(spec, results=tmp_path, backend="ray", progress=True)
    assert again.stats.runs_done == 12 and len(again.table) == 12
    said = capsys.readouterr().err.splitlines()[0]
    assert said == (
        f"resuming {again.path}: 12 runs done, 6 trials finished, nothing left to run (raise trials or "
        "replicates in the spec to extend it)"  # a spec given in Python: no sweep file to edit
    )


def test_profile_prints_each_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep.yaml"
    objectives = Path(__file__).parents[1] / "objectives.py"
    sweep.write_text(
        "experiment: prof\nobjective: objectives:quadratic\nmetrics: [{loss: minimize}, {x_abs: minimize}]\n"
        "variables: {x: {float: [-2.0, 2.0]}, y: {int: [0, 4]}, kind: {choice: [a, b]}}\n"
        "search: {method: random, trials: 4, seed: 0}\n"
    )
    (tmp_path / "objectives.py").write_text(objectives.read_text())
    args = ["launch", str(sweep), "--backend", "local", "--results", str(tmp_path / "r"), "-q", "--profile"]
    assert main(args) == 0
    err = capsys.readouterr().err
    phases = [line.split()[0] for line in err.split("profile:", 1)[1].splitlines()[1:]]
    for phase in ("spec", "components", "backend", "first", "last", "compaction", "shutdown", "total"):
        assert phase in phases, err


def _phases(err: str) -> dict[str, tuple[float, float]]:
    """The profile's phases: name -> (began, ended), in seconds since launch."""
    rows = {}
    for line in err.split("profile:", 1)[1].splitlines()[1:]:
        if line.split()[0] == "total":
            return rows
        *name, seconds, ended = line.split()
        rows[" ".join(name)] = (float(ended) - float(seconds), float(ended))
    return rows


@pytest.mark.timeout(180)
def test_ray_starts_beside_the_preparation_not_after_it(tmp_path: Path, ray_session: Any) -> None:
    """Ray's start (``import ray`` included) begins before the objective's import and the components,
    so the driver's own preparation overlaps it instead of delaying it."""
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "experiment: early\nobjective: objectives:quadratic\nmetrics: [{loss: minimize}, {x_abs: minimize}]\n"
        "variables: {x: {float: [-2.0, 2.0]}, y: {int: [0, 4]}, kind: {choice: [a, b]}}\n"
        "search: {method: random, trials: 4, seed: 0}\n"
    )
    (tmp_path / "objectives.py").write_text((Path(__file__).parents[1] / "objectives.py").read_text())
    address = ray_session.get_runtime_context().gcs_address
    args = ["launch", str(sweep), "--results", str(tmp_path / "r"), "--address", address, "-q", "--profile"]
    done = subprocess.run(
        [sys.executable, "-m", "sweeper", *args],
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    phases = _phases(done.stderr)
    ray_began = phases["ray start"][0]
    assert ray_began <= phases["objective"][0] + 0.002, done.stderr  # the profile prints milliseconds
    assert ray_began < phases["components"][0], done.stderr
    assert phases["spec"][1] <= ray_began + 0.002, done.stderr  # the spec says whether Ray is needed
