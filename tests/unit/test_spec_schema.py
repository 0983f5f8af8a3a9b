"""The JSON Schema editors use: equal to the model's, and it accepts every example and refuses mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sweeper.cli import main
from sweeper.spec.keys import TABLE, with_tables
from sweeper.spec.keys import main as keys_main
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


def test_readme_key_tables_are_the_schemas() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert TABLE.findall(readme), "README lost its <!-- keys: ... --> tables"
    assert readme == with_tables(readme), "regenerate them: python -m sweeper.spec.keys"


def test_the_table_check_sees_a_stale_row(tmp_path: Path) -> None:
    stale = (REPO / "README.md").read_text(encoding="utf-8").replace("| `alpha` | The", "| `alpha` | A", 1)
    (tmp_path / "README.md").write_text(stale, encoding="utf-8")
    assert with_tables(stale) != stale
    keys_main(tmp_path / "README.md")
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == with_tables(stale)
    assert "| `alpha` | The significance level" in (tmp_path / "README.md").read_text(encoding="utf-8")


def _properties(node: Any, at: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property of every object in a JSON Schema, with where it sits."""
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _properties(item, f"{at}[{i}]")]
    if not isinstance(node, dict):
        return []
    own = [(f"{at}.{name}", prop) for name, prop in node.get("properties", {}).items()]
    return own + [p for key, value in node.items() for p in _properties(value, f"{at}/{key}")]


def test_every_key_of_every_block_has_a_description() -> None:
    schema = json_schema()
    found = _properties(schema)
    assert len(found) > 100  # the walk reaches the blocks in $defs, not only the top level
    assert [where for where, prop in found if not prop.get("description", "").strip()] == []
    assert [name for name, block in schema["$defs"].items() if not block.get("description")] == []


def test_pruner_options_are_optunas_keyword_arguments() -> None:
    """The pruner models are built from PRUNERS (plain data, read at launch without pydantic); every
    option named there is a keyword argument of that Optuna pruner, so none is refused only at launch."""
    import inspect

    from sweeper.search.pruners import make_pruner
    from sweeper.spec.experiment import PRUNERS
    from sweeper.spec.model import load_spec

    for method, options in PRUNERS.items():
        pruner = type(make_pruner(method, {"percentile": 25.0} if method == "percentile" else {}))
        assert set(options) <= set(inspect.signature(pruner.__init__).parameters), method
        spec = load_spec({**_quickstart(), "pruner": {"method": method, **dict.fromkeys(options[:1], 3)}})
        assert spec.pruner is not None and spec.pruner.method == method
