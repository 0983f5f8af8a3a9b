"""The report's numbers on small seeded tables, pinned by golden files written by the code before the
report was made fast on big sweeps (issue 13 item 5): vectorising must not move a single number.

Each case writes a results folder with known structure, runs ``write_report`` and compares what it saved
(``summary.csv``, ``stability.csv``, ``verdict.json``, ``importance.json``) to ``tests/golden/report/``
within 1e-9 (summation order may differ), and ``report.md`` line by line. ``SWEEPER_UPDATE_GOLDEN=1``
rewrites the files that differ; review the diff. (Changed on purpose since: ``report.md`` names at most
100 trials indistinguishable from the best; the CSVs are written by Arrow, the same numbers.)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from results_fixture import write_results

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "report"
FILES = ("summary.csv", "stability.csv", "verdict.json", "importance.json", "report.md")


def plain_case(folder: Path, trials: int = 80, name: str = "golden-plain") -> Path:
    """Three models, a log float, an int, two metrics, failed and pruned runs, 80 trials x 3."""
    rng = np.random.default_rng(13)
    spec = {
        "experiment": name,
        "hypothesis": "b reaches higher accuracy than a",
        "objective": "train:run",
        "metrics": [{"acc": "maximize"}, {"fit_seconds": "minimize"}],
        "variables": {
            "model": {"choice": ["a", "b", "c"]},
            "lr": {"float": [1e-4, 1e-1], "log": True},
            "depth": {"int": [1, 8]},
        },
        "search": {"method": "random", "trials": trials, "seed": 0},
        "replicates": 3,
        "compare": {"variable": "model", "treatment": "b", "baseline": "a", "metric": "acc"},
    }
    seed_effect = rng.normal(0, 0.01, 3)
    rows = []
    for trial in range(trials):
        model = str(rng.choice(["a", "b", "c"]))
        lr = float(10 ** rng.uniform(-4, -1))
        depth = int(rng.integers(1, 9))
        for r in range(3):
            acc = 0.8 + 0.01 * (model == "b") - 0.02 * abs(math.log10(lr) + 2.5) + 0.003 * depth
            acc += seed_effect[r] + rng.normal(0, 0.002)
            u = rng.random()
            status = "failed" if u < 0.03 else "pruned" if u < 0.05 else "complete"
            rows.append(
                {
                    "trial": trial,
                    "replicate": r,
                    "model": model,
                    "lr": lr,
                    "depth": depth,
                    "status": status,
                    "acc": acc if status == "complete" else None,
                    "fit_seconds": float(np.exp(rng.normal(-3, 0.3)) * (1 + (model == "c"))),
                    "error": "ValueError: boom" if status == "failed" else None,
                }
            )
    return write_results(folder, spec, rows)


def settings_case(folder: Path) -> Path:
    """Three models in four datasets (within:), a ROPE, 5 replicates, several trials per arm."""
    rng = np.random.default_rng(31)
    datasets = ["iris", "wine", "digits", "cancer"]
    spec = {
        "experiment": "golden-settings",
        "hypothesis": "new beats old across datasets",
        "objective": "train:run",
        "metrics": [{"acc": "maximize"}, {"fit_seconds": "minimize"}],
        "variables": {
            "model": {"choice": ["new", "old", "mid"]},
            "dataset": {"choice": datasets},
            "h": {"int": [0, 100]},
        },
        "search": {"method": "random", "trials": 36, "seed": 0},
        "replicates": 5,
        "compare": {
            "variable": "model",
            "treatment": "new",
            "baseline": "old",
            "metric": "acc",
            "within": "dataset",
            "rope": 0.002,
        },
    }
    effect = {"new": 0.02, "old": 0.0, "mid": 0.01}
    scale = {"iris": 1.0, "wine": 0.9, "digits": 0.95, "cancer": 0.5}
    shared = {d: rng.normal(0, 0.01, 5) for d in datasets}
    rows = []
    trial = 0
    for d in datasets:
        for model in ("new", "old", "mid"):
            for _ in range(3):
                h = int(rng.integers(0, 101))
                for r in range(5):
                    acc = scale[d] * (0.8 + effect[model] - 0.0001 * h + shared[d][r] + rng.normal(0, 0.01))
                    cost = 0.01 * (5 if model == "new" else 1) * np.exp(rng.normal(0, 0.2))
                    rows.append(
                        {
                            "trial": trial,
                            "replicate": r,
                            "model": model,
                            "dataset": d,
                            "h": h,
                            "acc": acc,
                            "fit_seconds": float(cost),
                        }
                    )
                trial += 1
    return write_results(folder, spec, rows)


def sampled_case(folder: Path) -> Path:
    """The plain case with 400 trials: more than importance's seeded sample of 300."""
    return plain_case(folder, trials=400, name="golden-sampled")


CASES = {"plain": plain_case, "sampled": sampled_case, "settings": settings_case}


def close(a: Any, b: Any, where: str) -> None:
    """Equal JSON values, floats within 1e-9 relative (NaN/None alike)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, int | float) and isinstance(b, int | float), f"{where}: {a!r} != {b!r}"
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_numbers_match_golden_files(case: str, tmp_path: Path) -> None:
    from sweeper.report.build import write_report

    folder = CASES[case](tmp_path / case)
    out = write_report(folder).folder
    golden = GOLDEN / case
    for name in FILES:
        try:
            same(out / name, golden / name)
        except AssertionError:
            if os.environ.get("SWEEPER_UPDATE_GOLDEN") != "1":
                raise
            golden.mkdir(parents=True, exist_ok=True)  # only what changed: the old writer's files stay
            (golden / name).write_bytes((out / name).read_bytes())


def same(got: Path, want: Path) -> None:
    """The same numbers (CSV, JSON) or the same text (Markdown) as the golden file."""
    assert want.is_file(), f"run with SWEEPER_UPDATE_GOLDEN=1 once to write {want}"
    if got.suffix == ".csv":
        pd.testing.assert_frame_equal(pd.read_csv(got), pd.read_csv(want), rtol=1e-9, check_dtype=False)
    elif got.suffix == ".json":
        close(json.loads(got.read_text()), json.loads(want.read_text()), got.name)
    else:
        lines, golden = (
            got.read_text(encoding="utf-8").splitlines(),
            want.read_text(encoding="utf-8").splitlines(),
        )
        assert lines == golden, f"{got.name} changed; if on purpose, rerun with SWEEPER_UPDATE_GOLDEN=1"
