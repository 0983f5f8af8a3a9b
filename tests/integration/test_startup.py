"""Start-up: a launch with nothing to run never starts Ray; ``--profile`` says where the time went."""

from __future__ import annotations

from pathlib import Path

import pytest

import sweeper
from sweeper.backends import ray as ray_backend
from sweeper.cli import main
from tests.conftest import sweep_spec


def test_resume_with_nothing_left_never_starts_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = sweeper.load_spec(sweep_spec(), root=Path(__file__).parents[1])
    first = sweeper.launch(spec, results=tmp_path, backend="local")
    assert first.stats.runs_done == 12

    def refuse(address: str | None) -> None:
        raise AssertionError("Ray was started for a sweep with nothing left to run")

    monkeypatch.setattr(ray_backend, "connect", refuse)
    again = sweeper.launch(spec, results=tmp_path, backend="ray")
    assert again.stats.runs_done == 12 and len(again.table) == 12


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
