"""The confirmation stage through the engine: fresh seeds, marked rows, resume, status and report."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.compute as pc

import sweeper
from sweeper.analysis import hypothesis_verdict
from sweeper.engine.confirm import choose
from sweeper.results.atomic import atomic_write_table
from sweeper.results.reading import read_folder
from sweeper.results.status import experiment_status, format_status
from sweeper.results.table import TRIALS
from sweeper.results.values import CONFIRM_BASE
from sweeper.search.seeds import confirm_seeds, replicate_seeds
from sweeper.spec.experiment import Confirm
from sweeper.spec.model import load_spec


def spec(tmp_path, confirm: Confirm):
    base = load_spec(
        {
            "experiment": "confirming",
            "objective": "tests.integration.compare_objectives:no_effect",
            "metrics": [{"acc": "maximize"}, {"fit_seconds": "minimize"}],
            "variables": {
                "model": {"choice": ["big", "small"]},
                "dataset": {"choice": ["iris", "wine"]},
                "h": {"int": [1, 6], "when": {"model": "big"}},
            },
            "search": {"method": "grid"},
            "replicates": 3,
            "compare": {"variable": "model", "treatment": "big", "baseline": "small", "metric": "acc"},
        },
        root=tmp_path,
    )
    assert base.compare is not None
    raw = {**base.raw, "compare": {**base.raw["compare"], "within": "dataset"}}  # for experiment.json
    return replace(base, compare=replace(base.compare, within=("dataset",), confirm=confirm), raw=raw)


def test_confirmation_stage_runs_on_fresh_seeds_and_resumes(tmp_path):
    experiment = spec(tmp_path, Confirm(replicates=4, top=1))
    result = sweeper.launch(experiment, results=tmp_path, backend="local")
    assert result.stats.runs_done - result.stats.runs_before == 42 + 16  # this launch: both stages' runs
    # the live best (the progress line's) is the search's best trial, as the summary says: no rerun
    assert result.best is not None and result.stats.best_trial == result.best["trial"] < CONFIRM_BASE
    table = result.table
    search, confirm = table[table["stage"] == "search"], table[table["stage"] == "confirm"]
    assert len(search) == (6 + 1) * 2 * 3 and set(search["seed"]) == set(replicate_seeds(0, 3))
    # one configuration per arm and dataset, on 4 seeds the search never used
    assert sorted(confirm["trial"].unique()) == [CONFIRM_BASE + i for i in range(4)]
    assert set(confirm["seed"]) == set(confirm_seeds(0, 4)) and not set(confirm["seed"]) & set(search["seed"])
    assert (confirm.groupby("trial").size() == 4).all() and (confirm["status"] == "complete").all()
    picked = {p.trial: p.params for p in choose(experiment, search)}
    for trial, rows in confirm.groupby("trial"):
        first = rows.iloc[0]
        assert {k: first[k] for k in picked[trial]} == picked[trial]
    v = hypothesis_verdict(table, experiment)
    assert v is not None and v.stage == "confirm" and len(v.search) == len(v.comparisons) == 2
    assert all(c.n == 4 for c in v.comparisons) and all(c.n == 3 for c in v.search)
    assert "x longer" in v.sentence  # the cost side on the confirmation runs: big fits 10x slower
    # status and the report understand the stage
    text = format_status(experiment_status(result.path))
    assert "confirmation stage: 16 runs of 4 trials recorded" in text
    assert "runs: 42/42 recorded (42 complete)" in text  # the search stage's; the 16 are counted apart
    lines = text.splitlines()
    at = lines.index("  best so far per dataset (compare: within:):")
    assert [line.split(":")[0].strip() for line in lines[at + 1 : at + 3]] == ["dataset=iris", "dataset=wine"]
    report = sweeper.write_report(result.path)
    page = report.markdown.read_text()
    assert "Search stage vs confirmation" in page and "confirm.png" in report.figures

    # a relaunch runs nothing again
    again = sweeper.launch(experiment, results=tmp_path, backend="local")
    assert len(again.table) == len(table) and again.stats.runs_done - again.stats.runs_before == 0
    # a confirmation stage cut short is completed, with the same trials, variables and seeds
    folder = result.path / TRIALS
    full = read_folder(folder)
    cut = full.filter(
        pc.invert(pc.and_(pc.equal(full["stage"], "confirm"), pc.greater(full["replicate"], 1)))
    )
    for f in folder.iterdir():
        f.unlink()
    atomic_write_table(folder / "compact-000000.parquet", cut)
    relaunched = sweeper.launch(experiment, results=tmp_path, backend="local")
    assert relaunched.stats.runs_done - relaunched.stats.runs_before == 4 * 2  # the runs cut, no others
    resumed = relaunched.table
    key = ["trial", "replicate"]
    cols = ["trial", "replicate", "seed", "stage", "model", "dataset", "h", "acc"]
    assert (
        resumed.sort_values(key)[cols]
        .reset_index(drop=True)
        .equals(table.sort_values(key)[cols].reset_index(drop=True))
    )


def test_top_configurations_per_arm(tmp_path):
    experiment = spec(tmp_path, Confirm(replicates=2, top=2))
    table = sweeper.launch(experiment, results=tmp_path, backend="local").table
    confirm = table[table["stage"] == "confirm"]
    # big has 6 trials per dataset (2 confirmed), small only 1
    assert confirm.groupby(["dataset", "model"])["trial"].nunique().to_dict() == {
        ("iris", "big"): 2,
        ("iris", "small"): 1,
        ("wine", "big"): 2,
        ("wine", "small"): 1,
    }
    v = hypothesis_verdict(table, experiment)
    assert v is not None and v.stage == "confirm"


def test_without_confirm_there_is_no_stage_two(tmp_path):
    experiment = spec(tmp_path, Confirm(replicates=1))
    plain = replace(experiment, compare=replace(experiment.compare, confirm=None))  # type: ignore[arg-type]
    table = sweeper.launch(plain, results=tmp_path, backend="local").table
    assert set(table["stage"]) == {"search"}
