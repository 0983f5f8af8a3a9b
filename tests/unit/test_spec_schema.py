"""The JSON Schema editors use: equal to the model's, and it accepts every example and refuses mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sweeper.cli import main
from sweeper.spec.schema import json_schema

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "sweeper" / "spec" / "sweep.schema.json"
EXAMPLES = sorted((REPO / "sweeps").glob("*.yaml"))


def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(COMMITTED.read_text(encoding="utf-8")))


def test_committed_schema_is_the_models(capsys: pytest.CaptureFixture[str]) -> None:
    assert json.loads(COMMITTED.read_text(encoding="utf-8")) == json_schema(), (
        "regenerate it: sweeper schema > sweeper/spec/sweep.schema.json"
    )
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_and_names_the_schema(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../sweeper/spec/sweep.schema.json\n")
    assert list(_validator().iter_errors(yaml.safe_load(text))) == []


def _quickstart() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "sweeps" / "quickstart.yaml").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize(
    "change",
    [
        {"resourcs": {"cpus": 1}},
        {"search": {"method": "tpee", "trials": 3}},
        {"replicates": "3"},
        {"replicates": {"min": 2, "max": 4, "data": 3}},
        {"variables": {"lr": {"float": [1, 2], "choice": [1]}}},
        {"metrics": [{"acc": "up"}]},
        {"compare": {"variable": "optimizer", "baseline": "sgd", "correlation": 1.0}},
    ],
)
def test_a_broken_file_does_not_validate(change: dict[str, Any]) -> None:
    assert list(_validator().iter_errors({**_quickstart(), **change}))
