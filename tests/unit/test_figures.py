"""Figures and headlines that read true (issue 12, items 2 and 7), drawn from real trial tables."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import sweeper.analysis as analysis
from sweeper.report import figures
from sweeper.report.build import power_cell, write_report
from sweeper.spec.model import load_spec
from tests.results_fixture import model_rows, model_spec, seed_of, write_results


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure saved, kept open for inspection (the PNG is written all the same)."""
    figs: list[Any] = []
    save = figures._save

    def keep(fig: Any, path: Path) -> Path:
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    return figs


def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df["seed"] = df["replicate"].map(seed_of)
    df["status"] = "complete"
    return df


def test_parallel_lines_break_at_inactive_variables_and_end_labels_are_readable(
    tmp_path: Path, drawn: list[Any]
) -> None:
    spec = load_spec(model_spec())
    rows = model_rows(np.random.default_rng(0), effect=0.05, lrs=(1e-3, 1e-2, 3e-2))
    assert figures.parallel_coordinates(table(rows), spec, tmp_path / "p.png") is not None
    (ax,) = drawn[0].axes[:1]
    names = analysis.swept(spec)
    depth = names.index("depth")
    lines = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(lines) == 6  # one per trial
    for line in lines:  # every axis, none skipped over
        assert list(np.asarray(line.get_xdata(), float)) == list(range(len(names) + 1))
    inactive = [line for line in lines if math.isnan(float(np.asarray(line.get_ydata(), float)[depth]))]
    assert len(inactive) == 3  # resnet50 trials: no depth, so the line is broken there
    assert all(t.get_fontsize() >= figures.END_LABEL_SIZE >= 9 for t in ax.texts)


def test_pareto_puts_a_cost_spanning_orders_of_magnitude_on_a_log_axis(
    tmp_path: Path, drawn: list[Any]
) -> None:
    spec = load_spec(
        {
            **model_spec(models=("knn", "rf"), treatment="rf"),
            "metrics": [{"seconds": "minimize"}, {"accuracy": "maximize"}],
            "compare": {"variable": "model", "baseline": "knn", "treatment": "rf"},
        }
    )
    rows = []
    for trial, (model, seconds) in enumerate([("knn", 0.002), ("knn", 0.004), ("rf", 1.5), ("rf", 4.0)]):
        rows += [
            {"trial": trial, "replicate": r, "model": model, "lr": 1e-3, "seconds": seconds, "accuracy": 0.9}
            for r in range(2)
        ]
    assert figures.pareto_front(table(rows), spec, tmp_path / "pareto.png") is not None
    ax = drawn[0].axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "linear"


def test_a_zero_effect_reads_as_a_sentence_and_the_power_cell_says_why_it_is_blank() -> None:
    spec_dict = {**model_spec(models=("knn", "rf"), treatment="rf")}
    spec_dict["compare"] = {"variable": "model", "baseline": "knn", "treatment": "rf"}
    rows = [
        {"trial": t, "replicate": r, "model": model, "lr": 1e-3, "accuracy": 0.8 + 0.01 * r}
        for t, model in enumerate(["knn", "rf"])
        for r in range(5)
    ]
    v = analysis.hypothesis_verdict(table(rows), load_spec(spec_dict))
    assert v is not None and v.main.effect == 0
    assert "no different" not in v.main.sentence
    assert "rf and knn have the same mean accuracy (difference 0, CI [" in v.main.sentence
    assert (
        power_cell(v.main)
        == "n/a: the observed effect is 0, and no number of replicates detects an effect of 0"
    )


def test_mid_sweep_report_uses_the_complete_trials_and_counts_the_partial(tmp_path: Path) -> None:
    """The best arm's trial has 1 of 5 replicates so far: it is left out, not fed to Welch's test."""
    rows = model_rows(np.random.default_rng(1), effect=0.05, lrs=(1e-3, 1e-2))
    rows += [{"trial": 4, "replicate": 0, "model": "custom", "lr": 0.03, "depth": 4, "accuracy": 0.99}]
    folder = write_results(tmp_path / "models", model_spec(), rows, status="running")
    rep = write_report(folder)
    assert rep.verdict is not None and rep.verdict.main.test != "none", rep.verdict.main.reason
    assert rep.verdict.main.treatment_trial != 4 and rep.verdict.partial == 1
    text = (folder / "report" / "report.md").read_text()
    assert "1 trial(s) still miss replicates" in text
