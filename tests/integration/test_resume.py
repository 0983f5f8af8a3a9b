"""Resume: relaunching an experiment continues it from its trial table, never repeating work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import sweeper
from sweeper.errors import SweeperError
from sweeper.results.atomic import atomic_write_table
from sweeper.results.reading import read_folder
from sweeper.results.table import TRIALS
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent


def make_spec(**changes: Any) -> sweeper.Experiment:
    data: dict[str, Any] = {
        "experiment": "resume",
        "objective": "resume_objectives:quad",
        "metrics": [{"loss": "minimize"}],
        "variables": {"x": {"float": [0.0, 1.0]}, "y": {"choice": ["a", "b"]}},
        "search": {"method": "tpe", "trials": 8, "seed": 3},
        "replicates": 2,
    }
    for key, value in changes.items():
        if key in ("method", "trials", "seed"):
            data["search"][key] = value
        else:
            data[key] = value
    return load_spec(data, root=HERE)


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "calls"
    log.mkdir()
    monkeypatch.setenv("SWEEPER_TEST_LOG", str(log))
    return log


def count(log: Path) -> int:
    return sum(1 for _ in log.iterdir())


def clear(log: Path) -> None:
    for f in log.iterdir():
        f.unlink()


def keep_rows(folder: Path, keep) -> None:  # type: ignore[no-untyped-def]
    """Leave the table as a crash would have: only the rows ``keep(trial, replicate)`` accepts."""
    table = read_folder(folder / TRIALS)
    rows = [
        i
        for i, (t, r) in enumerate(
            zip(table.column("trial").to_pylist(), table.column("replicate").to_pylist(), strict=True)
        )
        if keep(t, r)
    ]
    for f in (folder / TRIALS).iterdir():
        f.rename(folder / f.name)  # out of the table, not deleted
    atomic_write_table(folder / TRIALS / "part-000000.parquet", table.take(rows))


def test_relaunch_of_a_finished_sweep_runs_nothing(tmp_path: Path, calls: Path) -> None:
    first = sweeper.launch(make_spec(), results=tmp_path, backend="local")
    assert count(calls) == 16
    before = first.table
    clear(calls)
    again = sweeper.launch(make_spec(), results=tmp_path, backend="local")
    assert count(calls) == 0
    assert again.table.equals(before)
    assert again.stats.trials_done == 8 and again.stats.runs_done == 16
    assert again.best == first.best


def test_resume_runs_only_missing_replicates_and_keeps_trial_ids(tmp_path: Path, calls: Path) -> None:
    full = sweeper.launch(make_spec(method="random"), results=tmp_path / "a", backend="local").table
    sweeper.launch(make_spec(method="random"), results=tmp_path / "b", backend="local")
    folder = tmp_path / "b" / "resume"
    # a crash lost replicate 1 of trials 2 and 5, and every replicate of trials 4 and 7
    keep_rows(folder, lambda t, r: not ((t in (2, 5) and r == 1) or t in (4, 7)))
    clear(calls)
    resumed = sweeper.launch(make_spec(method="random"), results=tmp_path / "b", backend="local")
    assert count(calls) == 6
    table = resumed.table
    assert len(table) == 16 and not table.duplicated(["trial", "replicate"]).any()
    assert sorted(table["trial"].unique()) == list(range(8))
    # same ids, same params: a random sweep resumed samples exactly what it would have uninterrupted
    cols = ["trial", "replicate", "seed", "x", "y", "loss"]
    assert table[cols].equals(full[cols])


def test_study_is_rebuilt_from_the_table(tmp_path: Path) -> None:
    from sweeper.engine.resume import restore
    from sweeper.search.searcher import Searcher

    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    folder = tmp_path / "resume"
    keep_rows(folder, lambda t, r: t < 5 or (t == 5 and r == 0))
    searcher = Searcher(make_spec())
    restored = restore(make_spec(), folder, searcher)
    states = [t.state.name for t in searcher.study.trials]
    assert states.count("COMPLETE") == 5 and states.count("RUNNING") == 1
    assert list(restored.partial) == [5] and restored.partial[5].missing == [1]
    assert searcher.asked == 6
    assert [searcher.ask().trial for _ in range(2)] == [6, 7]  # type: ignore[union-attr]
    assert searcher.ask() is None


def test_raising_trials_and_replicates_resumes(tmp_path: Path, calls: Path) -> None:
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    clear(calls)
    sweep = sweeper.launch(make_spec(trials=10, replicates=3), results=tmp_path, backend="local")
    assert count(calls) == 8 + 2 * 3  # a third replicate of the 8 old trials, 2 new trials
    table = sweep.table
    assert len(table) == 30 and not table.duplicated(["trial", "replicate"]).any()
    assert sweep.stats.trials_done == 10


def test_adding_a_recorded_metric_resumes(tmp_path: Path, calls: Path) -> None:
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    clear(calls)
    spec = make_spec(trials=9, metrics=[{"loss": "minimize"}, {"x2": "minimize"}])
    table = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert count(calls) == 2
    assert table["x2"].isna().sum() == 16 and table["x2"].notna().sum() == 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"variables": {"x": {"float": [0.0, 2.0]}, "y": {"choice": ["a", "b"]}}}, "variables"),
        ({"objective": "resume_objectives:quad_shifted"}, "objective"),
        ({"method": "random"}, "search method"),
        ({"seed": 4}, "search seed"),
        ({"metrics": [{"loss": "maximize"}]}, "searched metrics"),
        ({"method": "random", "seed": 4}, "search method and search seed"),
    ],
)
def test_incompatible_edit_is_refused_naming_what_changed(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    before = sorted(p.name for p in (tmp_path / "resume" / TRIALS).iterdir())
    with pytest.raises(SweeperError) as info:
        sweeper.launch(make_spec(**change), results=tmp_path, backend="local")
    text = str(info.value)
    assert f"run with other {named};" in text and "new name (experiment: in the spec)" in text
    assert "relaunch with fresh=True" in text  # a spec given in Python: the argument, not the flag
    assert sorted(p.name for p in (tmp_path / "resume" / TRIALS).iterdir()) == before


@pytest.mark.parametrize(
    ("variables", "lines"),
    [
        (
            {"x": {"float": [0.0, 2.0]}, "y": {"choice": ["a", "b"]}, "z": 1},
            [
                'variables.x: was {"kind": "float", "low": 0.0, "high": 1.0}, '
                'now {"kind": "float", "low": 0.0, "high": 2.0}',
                "variables.z: added",
            ],
        ),
        ({"x": {"float": [0.0, 1.0]}}, ["variables.y: removed"]),
        (
            {"y": {"choice": ["a", "b"]}, "x": {"float": [0.0, 1.0]}},
            ["variables: the same, in another order (was x y; the search samples in file order)"],
        ),
    ],
)
def test_a_refusal_names_each_variable_that_changed(
    tmp_path: Path, variables: dict[str, Any], lines: list[str]
) -> None:
    loose = "resume_objectives:loose"
    sweeper.launch(make_spec(objective=loose), results=tmp_path, backend="local")
    with pytest.raises(SweeperError) as info:
        sweeper.launch(make_spec(objective=loose, variables=variables), results=tmp_path, backend="local")
    said = [line.strip() for line in str(info.value).splitlines()[1:-1]]
    assert said == lines


def test_fresh_moves_the_old_folder_aside(
    tmp_path: Path, calls: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    old = sweeper.load(tmp_path / "resume")
    capsys.readouterr()
    for _ in range(2):  # twice within one second: the second must not overwrite the first
        sweeper.launch(make_spec(seed=9), results=tmp_path, backend="local", fresh=True, progress=True)
    aside = sorted(p for p in tmp_path.iterdir() if p.name.startswith("resume."))
    assert len(aside) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("moved ")]
    assert sorted(said) == [f"moved the earlier results aside to {p}" for p in aside]  # where they went
    assert sweeper.load(aside[0]).equals(old)
    assert json.loads((tmp_path / "resume" / "experiment.json").read_text())["spec"]["search"]["seed"] == 9


def test_failed_replicates_are_retried_only_when_asked(
    tmp_path: Path, calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "fail"
    flag.touch()
    monkeypatch.setenv("SWEEPER_TEST_FAIL", str(flag))
    spec = load_spec(
        {
            "experiment": "flaky",
            "objective": "resume_objectives:flaky",
            "metrics": [{"value": "maximize"}],
            "variables": {"x": {"float": [0.0, 1.0], "step": 0.25}},
            "search": {"method": "grid"},
            "replicates": 2,
        },
        root=HERE,
    )
    first = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert (first["status"] == "failed").sum() == 4  # x = 0.75 and 1.0
    flag.unlink()
    clear(calls)
    assert sweeper.launch(spec, results=tmp_path, backend="local").table.equals(first)
    assert count(calls) == 0
    retried = sweeper.launch(spec, results=tmp_path, backend="local", retry_failed=True)
    assert count(calls) == 4
    table = retried.table
    assert (table["status"] == "complete").all() and len(table) == 10
    assert sorted(table["attempt"]) == [1] * 6 + [2] * 4  # a retry is a new attempt
    assert retried.best is not None and retried.best["params"] == {"x": 1.0}


def test_grid_resume_skips_done_points(tmp_path: Path, calls: Path) -> None:
    spec = load_spec(
        {
            "experiment": "grid",
            "objective": "resume_objectives:quad",
            "metrics": [{"loss": "minimize"}],
            "variables": {"x": {"float": [0.0, 1.0], "step": 0.25}, "y": {"choice": ["a", "b"]}},
            "search": {"method": "grid"},
        },
        root=HERE,
    )
    full = sweeper.launch(spec, results=tmp_path, backend="local").table
    keep_rows(tmp_path / "grid", lambda t, r: t % 3 != 1)
    clear(calls)
    table = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert count(calls) == 3
    assert table[["trial", "x", "y", "loss"]].equals(full[["trial", "x", "y", "loss"]])


def test_truncated_or_foreign_part_is_named_and_nothing_is_touched(tmp_path: Path) -> None:
    import pyarrow as pa

    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    trials = tmp_path / "resume" / TRIALS
    good = sorted(trials.iterdir())
    data = good[0].read_bytes()
    bad = trials / "part-000090.parquet"
    bad.write_bytes(data[: len(data) // 2])
    snapshot = {p.name: p.read_bytes() for p in trials.iterdir()}
    with pytest.raises(SweeperError, match=r"part-000090\.parquet: not a readable Parquet file"):
        sweeper.launch(make_spec(), results=tmp_path, backend="local")
    with pytest.raises(SweeperError, match=r"part-000090\.parquet"):
        sweeper.load(tmp_path / "resume")
    assert {p.name: p.read_bytes() for p in trials.iterdir()} == snapshot
    bad.unlink()
    pq.write_table(pa.table({"a": [1, 2]}), bad)
    with pytest.raises(SweeperError, match=r"part-000090\.parquet: not a part of a sweeper trial table"):
        sweeper.launch(make_spec(), results=tmp_path, backend="local")
    assert sorted(trials.iterdir()) == sorted([*good, bad])


def test_fingerprint_covers_command_objectives() -> None:
    from sweeper.engine.resume import fingerprint

    base = {
        "experiment": "c",
        "command": "python t.py --lr {lr}",
        "metrics": {"acc": "maximize"},
        "variables": {"lr": {"float": [0.0, 1.0]}},
        "search": {"method": "random", "trials": 2},
    }
    a = fingerprint(load_spec(base))
    b = fingerprint(load_spec({**base, "command": "python t2.py --lr {lr}"}))
    c = fingerprint(load_spec({**base, "search": {"method": "random", "trials": 9}}))
    assert a["sha256"] != b["sha256"] and a["parts"]["objective"] != b["parts"]["objective"]
    assert a == c  # a bigger budget is the same experiment


def test_a_record_without_fingerprint_is_checked_from_its_spec(tmp_path: Path, calls: Path) -> None:
    """Folders written before fingerprints existed: the fingerprint is computed from the stored spec."""
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    path = tmp_path / "resume" / "experiment.json"
    record = json.loads(path.read_text())
    del record["fingerprint"]
    path.write_text(json.dumps(record))
    clear(calls)
    assert len(sweeper.launch(make_spec(trials=9), results=tmp_path, backend="local").table) == 18
    assert count(calls) == 2
    record = json.loads(path.read_text())
    del record["fingerprint"]
    path.write_text(json.dumps(record))
    with pytest.raises(SweeperError, match="run with other search seed;"):
        sweeper.launch(make_spec(seed=5), results=tmp_path, backend="local")


def test_a_constant_of_zero_and_one_of_false_are_other_experiments(tmp_path: Path, calls: Path) -> None:
    """Version 1 of the fingerprint left out every value equal to False (0, 0.0, false): folders it
    wrote are still checked with it, so they resume; new ones tell 0 from false."""
    from sweeper.engine.resume import fingerprint

    def spec(flag: Any, trials: int = 8) -> sweeper.Experiment:
        variables = {"x": {"float": [0.0, 1.0]}, "y": {"choice": ["a", "b"]}, "f": flag}
        return make_spec(objective="resume_objectives:loose", variables=variables, trials=trials)

    sweeper.launch(spec({"const": 0}), results=tmp_path, backend="local")
    with pytest.raises(SweeperError, match=r"variables\.f: was \{\"kind\": \"const\", \"value\": 0\}"):
        sweeper.launch(spec({"const": False}), results=tmp_path, backend="local")

    path = tmp_path / "resume" / "experiment.json"
    record = json.loads(path.read_text())
    record["fingerprint"] = fingerprint(spec({"const": 0}), 1)  # as an earlier sweeper wrote it
    assert "low" not in record["fingerprint"]["parts"]["variables"][0]
    path.write_text(json.dumps(record))
    assert len(sweeper.launch(spec({"const": 0}, trials=9), results=tmp_path, backend="local").table) == 18
    assert json.loads(path.read_text())["fingerprint"]["version"] == 2  # written anew once checked


@pytest.mark.parametrize("damage", ["truncated", "not an object", "missing"])
def test_a_damaged_experiment_record_is_named_and_nothing_is_touched(tmp_path: Path, damage: str) -> None:
    sweeper.launch(make_spec(), results=tmp_path, backend="local")
    folder = tmp_path / "resume"
    path = folder / "experiment.json"
    if damage == "truncated":
        path.write_text(path.read_text()[:40])
    elif damage == "not an object":
        path.write_text("[1, 2]")
    else:
        path.rename(folder / "experiment.json.bak")
    before = {p.name: p.read_bytes() for p in (folder / TRIALS).iterdir()}
    with pytest.raises(SweeperError) as info:
        sweeper.launch(make_spec(), results=tmp_path, backend="local")
    assert "experiment.json" in str(info.value) and "fresh=True" in str(info.value)
    assert {p.name: p.read_bytes() for p in (folder / TRIALS).iterdir()} == before


def test_deterministic_search_resumes_without_waiting_forever(tmp_path: Path, calls: Path) -> None:
    """Gated (deterministic) asking must treat trials finished before the crash as told, and fill
    ids lost with no row at all, or the resumed sweep would wait for them forever."""
    spec = make_spec(trials=10)
    data = dict(spec.raw)
    data["search"] = {**data["search"], "deterministic": True, "concurrency": 2}
    spec = load_spec(data, root=HERE)
    sweeper.launch(spec, results=tmp_path, backend="local")
    keep_rows(tmp_path / "resume", lambda t, r: t in (0, 1, 2, 3, 6) or (t == 4 and r == 0))
    clear(calls)
    table = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert count(calls) == 1 + 2 * 4  # trial 4's second replicate; trials 5, 7, 8, 9
    assert len(table) == 20 and sorted(table["trial"].unique()) == list(range(10))


def test_a_rerun_is_a_new_attempt_so_curves_never_mix(tmp_path: Path) -> None:
    """A run killed mid-way may have left history rows; its rerun reports under the next attempt."""
    spec = load_spec(
        {
            "experiment": "curves",
            "objective": "resume_objectives:curve",
            "metrics": [{"loss": "minimize"}],
            "variables": {"x": {"float": [0.0, 1.0]}},
            "search": {"method": "random", "trials": 4, "seed": 0},
            "replicates": 2,
        },
        root=HERE,
    )
    sweeper.launch(spec, results=tmp_path, backend="local")
    keep_rows(tmp_path / "curves", lambda t, r: (t, r) != (2, 1))  # history of (2, 1) stays
    table = sweeper.launch(spec, results=tmp_path, backend="local").table
    assert table.set_index(["trial", "replicate"])["attempt"].to_dict() == {
        (t, r): 2 if (t, r) == (2, 1) else 1 for t in range(4) for r in range(2)
    }
    from sweeper.results.history import load_history

    history = load_history(tmp_path / "curves")
    runs = history[(history["trial"] == 2) & (history["replicate"] == 1)]
    assert sorted(runs.groupby("attempt")["step"].apply(list).to_dict().items()) == [
        (1, [0, 1, 2]),
        (2, [0, 1, 2]),
    ]
