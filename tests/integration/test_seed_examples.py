"""The README's worked examples: sweeps/racing.yaml and sweeps/factors.yaml, from the sweep file on."""

from __future__ import annotations

from pathlib import Path

import sweeper
from sweeper.results.status import experiment_status, format_status
from sweeper.spec.experiment import Racing, SeedFactor
from sweeper.spec.model import load_spec

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def test_the_racing_example_spends_about_half_the_runs(tmp_path: Path) -> None:
    spec = load_spec(SWEEPS / "racing.yaml")
    assert spec.racing == Racing(2, 10) and spec.replicates == 10
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    runs = result.table.groupby("trial").size()
    assert len(runs) == 40 and runs.min() == 2 and runs.max() == 10
    assert runs.sum() <= 0.6 * 40 * 10
    best = result.best
    assert best is not None and best["n"] == 10
    status = experiment_status(result.path)
    assert status.racing.startswith("replicates 2..10: 40 of 40 trials raced")
    assert "racing: replicates 2..10" in format_status(status) and "resumable: yes" in format_status(status)


def test_the_factor_example_names_the_split_as_the_main_perturbation(tmp_path: Path) -> None:
    spec = load_spec(SWEEPS / "factors.yaml")
    assert spec.factors == (SeedFactor("data", 5), SeedFactor("init", 3)) and spec.replicates == 15
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    table = result.table
    assert len(table) == 12 * 15 and table[["data_seed", "init_seed"]].drop_duplicates().shape[0] == 15
    report = sweeper.write_report(result.path)
    text = report.markdown.read_text()
    assert "## Which seed moves the result" in text
    assert "of the spread between replicates comes from data; init adds" in text
