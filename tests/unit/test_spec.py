"""Spec validation: every bad input gets sweeper's own error naming the field and the fix."""

from __future__ import annotations

import copy
import textwrap

import pytest

from sweeper import SpecError, load_spec
from tests.conftest import sweep_spec


def _error(**overrides) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(sweep_spec(**overrides))
    return info.value


def test_valid_spec_parses_every_variable_kind():
    spec = load_spec(
        sweep_spec(
            variables={
                "model": {"choice": ["custom", "resnet50"]},
                "lr": {"float": [1e-4, 1e-1], "log": True},
                "epochs": {"int": [10, 120], "step": 10},
                "width": {"int": [16, 128], "when": {"model": "custom"}},
                "dataset": "cifar10",
            }
        )
    )
    kinds = {v.name: v.kind for v in spec.variables}
    assert kinds == {"model": "choice", "lr": "float", "epochs": "int", "width": "int", "dataset": "const"}
    assert spec.variable("width").when == (("model", ("custom",)),)
    assert spec.primary.name == "loss" and spec.primary.direction == "minimize"


@pytest.mark.parametrize(
    ("overrides", "field", "fix_words"),
    [
        ({"bogus": 1}, "bogus", "valid keys"),
        ({"replicates": "five"}, "replicates", "integer"),
        ({"replicates": 0}, "replicates", "at least 1"),
        ({"variables": {"x": {"float": [2.0, 1.0]}}}, "variables.x.float", "swap"),
        ({"variables": {"x": {"float": [0.0, 1.0], "log": True}}}, "variables.x.log", "above zero"),
        ({"variables": {"w": {"int": [1, 4], "when": {"model": "a"}}}}, "variables.w.when.model", "declare"),
        ({"variables": {"seed": {"int": [1, 4]}}}, "variables.seed", "rename"),
        ({"variables": {"x": [1, 2]}}, "variables.x", "choice"),
        ({"variables": {"x": {"choice": [1, 2], "step": 1}}}, "variables.x.step", "valid keys"),
        ({"metrics": [{"status": "maximize"}]}, "metrics.status", "rename"),
        ({"metrics": [{"acc": "up"}]}, "metrics.acc", "maximize or minimize"),
        ({"objective": "no_colon"}, "objective", "module:function"),
        ({"search": {"method": "tpee", "trials": 3}}, "search.method", "did you mean 'tpe'"),
        ({"search": {"method": "tpe"}}, "search.trials", "trials"),
        ({"search": {"method": "grid"}}, "variables.x", "step"),
        (
            {"search": {"method": "nsga2", "trials": 4}, "metrics": [{"a": "maximize"}]},
            "search.method",
            "add a metric",
        ),
        ({"experiment": "../escape"}, "experiment", "letters"),
        ({"resources": {"gpus": 1.5}}, "resources.gpus", "fraction"),
        ({"resources": {"cpus": -1}}, "resources.cpus", "at least"),
    ],
)
def test_bad_input_names_field_and_fix(overrides, field, fix_words):
    err = _error(**overrides)
    assert err.field == field
    assert fix_words in (err.fix + err.problem)
    assert "<dict>" in str(err) and "fix:" in str(err)


def test_missing_required_key():
    spec = sweep_spec()
    del spec["metrics"]
    with pytest.raises(SpecError, match="metrics: missing"):
        load_spec(spec)


def test_when_value_must_be_a_choice():
    spec = sweep_spec(
        variables={"model": {"choice": ["a", "b"]}, "w": {"int": [1, 4], "when": {"model": "c"}}}
    )
    with pytest.raises(SpecError, match="not one of"):
        load_spec(spec)


def test_compare_is_checked_against_the_variable():
    err = _error(compare={"variable": "kind", "treatment": "z", "baseline": "a"})
    assert err.field == "compare.treatment"
    spec = load_spec(sweep_spec(compare={"variable": "kind", "treatment": "b", "baseline": "a"}))
    assert spec.compare.metric == "loss"


def test_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad\.yaml:2:1: not valid YAML: while parsing a flow sequence"):
        load_spec(bad)
    good = tmp_path / "good.yaml"
    good.write_text(
        textwrap.dedent("""
        experiment: demo
        objective: objectives:quadratic
        metrics: [{loss: minimize}]
        variables: {x: {float: [0, 1]}, y: {int: [0, 1]}, kind: {choice: [a]}}
        search: {method: random, trials: 2}
        replicates: [1]
    """)
    )
    with pytest.raises(SpecError) as info:
        load_spec(good)
    assert str(info.value).startswith(f"{good}:7:1: replicates")
    with pytest.raises(SpecError, match="no such sweep file") as info:
        load_spec(tmp_path / "missing.yaml")
    assert "did you mean" not in info.value.fix  # nothing near it: the general fix
    with pytest.raises(SpecError, match="no such sweep file") as info:
        load_spec(tmp_path / "goood.yaml")  # a typo beside the file meant
    assert info.value.fix == f"did you mean {good}?"


def test_spec_keeps_raw_for_experiment_json():
    raw = sweep_spec()
    spec = load_spec(copy.deepcopy(raw))
    assert spec.raw == raw


def test_exponent_numbers_are_numbers_as_in_yaml_1_2(tmp_path):
    """PyYAML reads 1e-4 as text (YAML 1.1 wants 1.0e-4); researchers and editors' YAML servers write
    and read it as a number. Quoted, it is text still, and the fix says why it was refused."""
    path = tmp_path / "lr.yaml"
    body = """
        experiment: demo
        objective: objectives:quadratic
        metrics: [{{loss: minimize}}]
        variables: {{x: {{float: [{low}, 1E+0]}}, y: {{int: [0, 1]}}, kind: {{choice: [a, 2e3, -.5e1]}}}}
        search: {{method: random, trials: 2}}
    """
    path.write_text(textwrap.dedent(body.format(low="1e-4")))
    spec = load_spec(path)
    x, _, kind = spec.variables
    assert (x.low, x.high) == (1e-4, 1.0) and kind.choices == ("a", 2000.0, -5.0)
    path.write_text(textwrap.dedent(body.format(low="'1e-4'")))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(
        f"{path}:5:25: variables.x.float[0]: expected a finite number, got '1e-4'"
    )
    assert info.value.fix.endswith("(in quotes it is text: drop them)")
