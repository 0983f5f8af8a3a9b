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
from sweeper.report.build import write_report
from sweeper.report.sections import power_cell
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


def _wide_spec(variables: dict[str, Any]) -> Any:
    return load_spec(
        {
            "experiment": "wide",
            "objective": "m:f",
            "metrics": [{"loss": "minimize"}],
            "variables": variables,
            "search": {"method": "random", "trials": 40},
        }
    )


def test_a_choice_of_100000_levels_draws_with_thinned_labels_and_says_so(
    tmp_path: Path, drawn: list[Any]
) -> None:
    levels = [f"c{i}" for i in range(100_000)]
    spec = _wide_spec({"c": {"choice": levels}, "x": {"float": [0.0, 1.0]}})
    rng = np.random.default_rng(0)
    picks = rng.choice(100_000, 40, replace=False)
    df = table(
        [
            {"trial": t, "replicate": 0, "c": levels[k], "x": t / 40, "loss": float(k)}
            for t, k in enumerate(picks)
        ]
    )
    assert figures.metric_vs_variables(df, spec, tmp_path / "v.png") is not None
    ax = drawn[0].axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert 2 <= len(labels) <= figures.MAX_LABELS + 1  # not one label per level
    assert ax.get_title() == f"100000 levels, 40 in trials, {len(labels)} labelled"
    assert figures.parallel_coordinates(df, spec, tmp_path / "p.png") is not None
    ax = drawn[1].axes[0]
    assert len(ax.texts) <= figures.MAX_LABELS + 1 + 2 + 2  # c's labels, x's ends, the metric's ends
    assert "c: every level placed, some labelled" in ax.get_title()


def test_ten_thousand_variables_draw_the_first_few_and_say_so(tmp_path: Path, drawn: list[Any]) -> None:
    n = 10_000
    spec = _wide_spec({f"v{i}": {"int": [0, 9]} for i in range(n)})
    values = np.random.default_rng(1).integers(0, 10, (40, n))
    df = pd.DataFrame(values, columns=[f"v{i}" for i in range(n)])
    df = pd.concat([table([{"trial": t, "replicate": 0, "loss": float(t)} for t in range(40)]), df], axis=1)
    note = f"the first {figures.MAX_PANELS} of {n} variables, in sweep-file order"
    assert figures.metric_vs_variables(df, spec, tmp_path / "v.png") is not None
    assert len([ax for ax in drawn[0].axes if ax.get_visible()]) == figures.MAX_PANELS
    assert note in drawn[0].get_suptitle()
    assert figures.parallel_coordinates(df, spec, tmp_path / "p.png") is not None
    assert [t.get_text() for t in drawn[1].axes[0].get_xticklabels()][-1] == "loss"
    assert len(drawn[1].axes[0].get_xticklabels()) == figures.MAX_PANELS + 1
    assert note in drawn[1].axes[0].get_title()


def wide_case(folder: Path, n: int = 30, trials: int = 60) -> Path:
    """A results folder of ``n`` variables of which only the last three move the loss."""
    spec = {
        "experiment": "wide",
        "objective": "m:f",
        "metrics": [{"loss": "minimize"}],
        "variables": {f"v{i}": {"float": [0.0, 1.0]} for i in range(n)},
        "search": {"method": "random", "trials": trials},
    }
    values = np.random.default_rng(3).uniform(0, 1, (trials, n))
    rows = [
        {
            "trial": t,
            "replicate": 0,
            **{f"v{i}": float(values[t, i]) for i in range(n)},
            "loss": float(5 * values[t, n - 1] + 3 * values[t, n - 3] ** 2 + 2 * values[t, n - 2]),
        }
        for t in range(trials)
    ]
    return write_results(folder, spec, rows)


def test_a_wide_sweeps_figures_draw_its_most_important_variables(tmp_path: Path, drawn: list[Any]) -> None:
    """30 variables, of which only the last three move the loss: the report's variables figure and
    parallel coordinates show those (the importance it computes picks them), not the first 12."""
    n = 30
    folder = wide_case(tmp_path / "wide", n)
    write_report(folder)
    important = {"v27", "v28", "v29"}
    variables = next(f for f in drawn if "against each variable" in f.get_suptitle())
    panels = [ax.get_xlabel() for ax in variables.axes if ax.get_visible()]
    assert len(panels) == figures.MAX_PANELS and important <= set(panels[:3]), panels
    assert f"the {figures.MAX_PANELS} most important of {n} variables (fANOVA)" in variables.get_suptitle()
    parallel = next(f for f in drawn if f.axes and f.axes[0].get_title().startswith("Top "))
    axes = [t.get_text() for t in parallel.axes[0].get_xticklabels()]
    assert important <= set(axes[:3]) and axes[-1] == "loss", axes
    assert (folder / "report" / "variables.png").is_file() and (folder / "report" / "parallel.png").is_file()
