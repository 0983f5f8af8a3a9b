"""A newcomer's first hour (issue 12): failures on screen, shareable files, true numbers, reruns."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import sweeper
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_every_results_file_is_readable_by_others_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    data = {
        "experiment": "shared",
        "objective": "objectives:quadratic",
        "metrics": [{"loss": "minimize"}, {"x_abs": "minimize"}],
        "variables": {"x": {"float": [-2.0, 2.0]}, "y": {"int": [0, 4]}, "kind": {"choice": ["a", "b"]}},
        "search": {"method": "random", "trials": 6, "seed": 0},
        "replicates": 2,
        "compare": {"variable": "kind", "treatment": "b", "baseline": "a"},
    }
    sweep = sweeper.launch(load_spec(data, root=HERE.parent), results=tmp_path, backend="local")
    sweeper.write_report(sweep.path)
    files = [p for p in sweep.path.rglob("*") if p.is_file()]
    assert {"experiment.json", "index.html", "report.md"} <= {p.name for p in files}
    assert any(p.suffix == ".parquet" for p in files)
    private = [
        f"{p.relative_to(sweep.path)} {stat.filemode(p.stat().st_mode)}"
        for p in files
        if p.stat().st_mode & 0o044 != 0o044
    ]
    assert not private
