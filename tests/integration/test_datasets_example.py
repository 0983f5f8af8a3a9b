"""sweeps/datasets.yaml end to end (at 2 replicates to stay light): per-data-set verdicts, the verdict across
data sets with its CD diagram, the cost side and the confirmation stage, in the written report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml

import sweeper
from sweeper.spec.experiment import Confirm
from sweeper.spec.model import load_spec

EXAMPLE = Path(__file__).parents[2] / "sweeps" / "datasets.yaml"


def example_spec(replicates: int):
    """The example's spec; its compare: keys within/confirm are set on the dataclass, so the test does
    not depend on which parser reads them."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    compare = dict(raw["compare"])
    within, confirm = compare.pop("within"), compare.pop("confirm")
    spec = load_spec({**raw, "compare": compare, "replicates": replicates}, root=EXAMPLE.parent)
    assert spec.compare is not None and confirm == 5
    return replace(spec, compare=replace(spec.compare, within=(within,), confirm=Confirm(replicates)))


def test_datasets_example_reports_every_part_of_the_verdict(tmp_path):
    spec = example_spec(replicates=2)
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    report = sweeper.write_report(result.path, spec)
    v = report.verdict
    assert v is not None and v.stage == "confirm" and v.across is not None
    assert v.across.test == "Friedman" and v.across.n_settings == 4 and len(v.across.ranks) == 3
    assert {c.setting for c in v.comparisons} == {
        "dataset=iris",
        "dataset=wine",
        "dataset=breast_cancer",
        "dataset=digits",
    }
    assert [c.metric for c in v.costs] == ["fit_seconds"]
    assert {"cd.png", "effects.png", "confirm.png"} <= set(report.figures)
    page = report.markdown.read_text()
    for section in ("Each setting of dataset", "Across settings", "Cost:", "Search stage vs confirmation"):
        assert section in page
