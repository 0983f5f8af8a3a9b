"""Seed factors end to end: the full factorial runs, the objective gets each factor's seed, the table
has a column per factor, and the report attributes the spread to the factor that causes it."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

import sweeper
from sweeper.analysis.variance import decompose
from sweeper.report.sections import seed_factor_blocks
from sweeper.search.seeds import factor_seed, replicate_seeds
from sweeper.spec.experiment import SeedFactor
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent
SWEEP = """
experiment: {name}
objective: racing_objectives:{objective}
metrics: [score: maximize]
variables:
  x: {{choice: [0.0, 1.0, 2.0]}}
search: {{method: grid}}
replicates: 6
"""
FACTORS = (SeedFactor("data", 3), SeedFactor("init", 2))


def factorial(tmp_path: Path, objective: str) -> tuple[object, object]:
    sweep = tmp_path / f"{objective}.yaml"
    sweep.write_text(SWEEP.format(name=objective.replace("_", "-"), objective=objective))
    (tmp_path / "racing_objectives.py").write_text((HERE / "racing_objectives.py").read_text())
    spec = dataclasses.replace(load_spec(sweep), factors=FACTORS)
    result = sweeper.launch(spec, results=tmp_path / "results", backend="local")
    return spec, result


@pytest.mark.parametrize(
    ("objective", "cause", "other"), [("split_only", "data", "init"), ("init_only", "init", "data")]
)
def test_the_spread_is_put_on_the_factor_that_causes_it(
    tmp_path: Path, objective: str, cause: str, other: str
) -> None:
    spec, result = factorial(tmp_path, objective)
    table = sweeper.load(result.path)  # type: ignore[attr-defined]
    assert len(table) == 3 * 6 and set(table["status"]) == {"complete"}
    cells = {(d, i) for d, i in zip(table["data_seed"], table["init_seed"], strict=True)}
    data = [factor_seed(spec.search.seed, "data", j) for j in range(3)]  # type: ignore[attr-defined]
    init = [factor_seed(spec.search.seed, "init", j) for j in range(2)]  # type: ignore[attr-defined]
    assert cells == set(itertools.product(data, init))  # the full factorial
    assert list(table.groupby("replicate")["seed"].first()) == replicate_seeds(spec.search.seed, 6)  # type: ignore[attr-defined]
    dec = decompose(table, spec)  # type: ignore[arg-type]
    assert dec is not None and len(dec.per_trial) == 3
    shares = dec.shares()
    assert shares[cause] > 0.99 and shares[other] < 0.01
    blocks = seed_factor_blocks(table, spec)  # type: ignore[arg-type]
    assert blocks[0] == ("h2", "Which seed moves the result")
    assert blocks[1][1].startswith(f"100 % of the spread between replicates comes from {cause}")
