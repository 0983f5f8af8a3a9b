"""Resume's column-wise table restore gives exactly what the row-by-row reader it replaced gave.

The reference below is that reader (one dict per row, folded per trial), kept as the oracle. Tables
are seeded mixtures of what real ones hold: every status, NaN and infinite values, missing and extra
replicates, rows rewritten in a later part, rows without a trial id, inactive variables, mixed-type
choices, missing times.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sweeper.engine.resume import FAILED, restore
from sweeper.results.atomic import atomic_write_table
from sweeper.results.reading import read_folder
from sweeper.results.table import TRIALS, trial_schema
from sweeper.results.values import better, trial_value, trial_values
from sweeper.search.racing import replay
from sweeper.search.searcher import Searcher, told_metrics
from sweeper.spec.model import load_spec

STATUSES = ["complete"] * 6 + ["failed", "pruned", "timeout", None]


def make_spec(method: str = "random", replicates: Any = 3, metrics: int = 2) -> Any:
    return load_spec(
        {
            "experiment": "restore",
            "objective": "objectives:quadratic",
            "metrics": [{f"m{i}": "minimize" if i else "maximize"} for i in range(metrics)],
            "variables": {
                "x": {"float": [-1.0, 1.0]},
                "model": {"choice": ["a", 1, 2.5]},  # mixed types: stored as text
                "width": {"int": [1, 9], "when": {"model": "a"}},  # inactive: null
            },
            "search": {"method": method, "trials": 200, "seed": 1},
            "replicates": replicates,
        },
        root=Path(__file__).parent,
    )


def write_table(folder: Path, spec: Any, seed: int, one_file: bool = False) -> None:
    """A seeded table in a compact file and two parts, or in one part, with rows rewritten later on
    (a rerun; the rewrite of a trial's row is given other params too, to pin whose params count)."""
    rng = random.Random(seed)
    schema = trial_schema(spec)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = []
    for k in rng.sample(range(60), 45):
        model = rng.choice(["a", "1", "2.5"])
        params = {
            "x": rng.uniform(-1, 1),
            "model": model,
            "width": rng.randint(1, 9) if model == "a" else None,
        }
        for r in rng.sample(range(5), rng.randint(1, 5)):
            start = t0 + dt.timedelta(seconds=rng.uniform(0, 1e5), microseconds=rng.randint(0, 999_999))
            rows.append(
                {
                    "trial": k,
                    "replicate": r,
                    "seed": r,
                    "status": rng.choice(STATUSES),
                    "stage": rng.choice(["search"] * 9 + ["confirm", None]),
                    **params,
                    "m0": rng.choice([rng.gauss(0, 1)] * 8 + [math.nan, math.inf, None]),
                    "m1": rng.gauss(0, 1) if rng.random() < 0.9 else None,
                    "started_at": start if rng.random() < 0.95 else None,
                    "ended_at": start + dt.timedelta(seconds=rng.uniform(0, 5))
                    if rng.random() < 0.95
                    else None,
                    "attempt": rng.choice([None, 1, 1, 2, 3]),
                }
            )
    rng.shuffle(rows)
    rows.append({**rows[0], "trial": None})  # foreign rows without keys are skipped
    rewrites = [
        {**rng.choice(rows), "status": rng.choice(STATUSES), "m0": rng.gauss(0, 1), "x": rng.uniform(-1, 1)}
        for _ in range(30)
    ]
    (folder / TRIALS).mkdir(parents=True)
    files = (
        {"part-000000": rows + rewrites}
        if one_file
        else {
            "compact-000003": rows[:200],
            "part-000004": rows[200:] + rewrites[:15],
            "part-000005": rewrites[15:],
        }
    )
    for name, chunk in files.items():
        atomic_write_table(folder / TRIALS / f"{name}.parquet", pa.Table.from_pylist(chunk, schema=schema))


def row_reader(spec: Any, folder: Path, retry_failed: bool) -> dict[str, Any]:
    """The row-by-row restore resume used before (sweeper 2026-12-01), as plain data."""
    import pyarrow.compute as pc

    table = read_folder(folder / TRIALS)
    table = table.filter(pc.equal(pc.fill_null(table.column("stage"), "search"), "search"))
    told = [m.name for m in told_metrics(spec)]
    trials: dict[int, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = {}
    for row in table.to_pylist():
        k, r = row["trial"], row["replicate"]
        if k is None or r is None:
            continue
        if k not in trials:
            params = {}
            for v in spec.variables:
                value = row[v.name]
                if value is None:
                    continue
                options = v.choices if v.kind == "choice" else ()
                if options and value not in options:
                    value = {str(c): c for c in options}.get(str(value), value)
                params[v.name] = value
            trials[k] = (params, {})
        trials[k][1][r] = {
            "status": row["status"],
            "told": [math.nan if row[m] is None else float(row[m]) for m in told],
            "started": None if row["started_at"] is None else row["started_at"].timestamp(),
            "ended": None if row["ended_at"] is None else row["ended_at"].timestamp(),
            "attempt": row["attempt"],
        }
    dones = {
        k: {r: row for r, row in reps.items() if not (retry_failed and row["status"] in FAILED)}
        for k, (_, reps) in trials.items()
    }
    race = replay(
        spec,
        (
            (k, p, {r: (row["told"][0], row["status"]) for r, row in dones[k].items()})
            for k, (p, _) in trials.items()
        ),
    )
    out: dict[str, Any] = {"partial": {}, "runs": 0, "trials": 0, "counts": {}, "best": None, "finished": []}
    starts, ends = [], []
    for k, (params, reps) in sorted(trials.items()):
        done = dones[k]
        wanted = spec.replicates if race is None else race.target(k)
        missing = [r for r in range(wanted) if r not in done]
        values = [row["told"] for row in done.values() if row["status"] == "complete"]
        statuses = [row["status"] for row in done.values()]
        for row in done.values():
            out["runs"] += 1
            out["counts"][row["status"]] = out["counts"].get(row["status"], 0) + 1
            starts += [row["started"]] if row["started"] is not None else []
            ends += [row["ended"]] if row["ended"] is not None else []
        if missing or (race is not None and not race.ended(k)):
            made = {r: int(reps[r]["attempt"] or 0) if r in reps else 0 for r in missing}
            out["partial"][k] = (params, missing, values, statuses, made)
            continue
        out["trials"] += 1
        if not values:
            out["finished"].append((k, params, None, "pruned" if "pruned" in statuses else "failed"))
            continue
        out["finished"].append((k, params, trial_values(values), "complete"))
        value = trial_value([v[0] for v in values])
        raced = race is None or len(done) >= spec.replicates
        if (
            raced
            and value is not None
            and (out["best"] is None or better(spec.primary.direction, value, out["best"][0]))
        ):
            out["best"] = (value, k)
    out["first_start"] = min(starts, default=None)
    out["last_end"] = max(ends, default=None)
    return out


def as_data(spec: Any, folder: Path, retry_failed: bool, searcher: Searcher | None = None) -> dict[str, Any]:
    got = restore(spec, folder, searcher, retry_failed=retry_failed)
    return {
        "partial": {
            k: (p.params, p.missing, p.values, p.statuses, p.attempts) for k, p in got.partial.items()
        },
        "runs": got.runs_done,
        "trials": got.trials_done,
        "counts": got.counts,
        "best": got.best,
        "finished": list(got.finished),
        "first_start": got.first_start,
        "last_end": got.last_end,
    }


def check_same(new: dict[str, Any], old: dict[str, Any]) -> None:
    # repr: exact floats, NaN equal to NaN, and 1 told apart from 1.0 and True; dict order counts
    for key in old:
        assert repr(new[key]) == repr(old[key]), key
    assert list(new["counts"]) == list(old["counts"])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("retry_failed", [False, True])
def test_column_wise_restore_equals_the_row_reader(tmp_path: Path, seed: int, retry_failed: bool) -> None:
    spec = make_spec(metrics=1 + seed % 2)
    write_table(tmp_path, spec, seed, one_file=seed % 3 == 0)  # one file: its duplicates are ours to fold
    new, old = as_data(spec, tmp_path, retry_failed), row_reader(spec, tmp_path, retry_failed)
    assert old["partial"] and old["finished"] and old["best"]  # the table exercises every branch
    check_same(new, old)


@pytest.mark.parametrize("seed", range(3))
def test_racing_restore_equals_the_row_reader(tmp_path: Path, seed: int) -> None:
    spec = make_spec(replicates={"min": 2, "max": 4}, metrics=1)
    write_table(tmp_path, spec, seed)
    check_same(as_data(spec, tmp_path, False), row_reader(spec, tmp_path, False))


def test_the_study_is_rebuilt_from_the_same_trials(tmp_path: Path) -> None:
    spec = make_spec(method="tpe", metrics=1)
    write_table(tmp_path, spec, 7)
    searcher = Searcher(spec)
    data = as_data(spec, tmp_path, False, searcher)
    study = searcher.study
    assert study is not None
    finished = [t for t in study.trials if t.state.name != "RUNNING"]
    assert [t.params for t in finished] == [p for _, p, _, _ in data["finished"]]
    told = [v[0] if v is not None and math.isfinite(v[0]) else None for _, _, v, _ in data["finished"]]
    assert [t.value for t in finished] == told  # non-finite aggregates are told as failed
    assert sum(t.state.name == "RUNNING" for t in study.trials) == len(data["partial"])
    assert searcher.asked == len(data["finished"]) + len(data["partial"])
