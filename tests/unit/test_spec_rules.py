"""The sweep file's model: every mistake at once with its line, the new blocks, and hostile numbers."""

from __future__ import annotations

import dataclasses
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from sweeper import SpecError, load_spec
from sweeper.spec.experiment import Confirm, Experiment, Racing, SeedFactor, Tracking
from sweeper.spec.model import check_experiment
from tests.conftest import sweep_spec

THREE_MISTAKES = """\
experiment: demo
objective: objectives:quadratic
metrics: [{loss: minimize}]
variables:
  x: {float: [2.0, 1.0]}
  kind: {choice: [a, b]}
search: {method: tpee, trials: 4}
replicates: 3
resourcs: {cpus: 1}
"""


def _errors(**overrides: object) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(sweep_spec(**overrides))
    return info.value


def test_three_mistakes_three_messages_in_file_order_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(THREE_MISTAKES)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    got = [(e.line, e.column, e.field) for e in info.value.errors]
    assert got == [(5, 7, "variables.x.float"), (7, 10, "search.method"), (9, 1, "resourcs")]
    text = str(info.value)
    assert text.splitlines()[0] == f"{path}:5:7: variables.x.float: low > high (2.0 > 1.0)"
    assert "did you mean 'tpe'?" in text and "did you mean 'resources'?" in text
    assert text.count("\n  fix: ") == 3


def test_the_list_is_capped(tmp_path: Path) -> None:
    variables = "".join(f"  v{i}: {{int: [{i + 1}, 0]}}\n" for i in range(25))
    path = tmp_path / "many.yaml"
    path.write_text(
        "experiment: many\nobjective: m:f\nmetrics: [a: maximize]\nsearch: {trials: 3}\n"
        f"variables:\n{variables}"
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert len(info.value.errors) == 25
    assert str(info.value).count("low > high") == 20 and str(info.value).endswith("and 5 more")


def test_a_dict_spec_gets_every_mistake_and_no_sweep_file_words() -> None:
    spec = sweep_spec(replicates=0, search={"method": "random", "trials": 0})
    del spec["metrics"]
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    err = info.value
    assert [e.field for e in err.errors] == ["metrics", "search.trials", "replicates"]
    assert all(e.source == "<dict>" and e.line == 0 for e in err.errors)
    assert "sweep file" not in str(err)


def test_a_typo_is_one_mistake_not_two() -> None:
    spec = sweep_spec()
    spec["metircs"] = spec.pop("metrics")
    err = _errors(**spec)
    assert [e.field for e in err.errors] == ["metircs"] and "did you mean 'metrics'" in err.fix


def test_field_mistakes_and_rules_across_keys_come_in_one_pass(tmp_path: Path) -> None:
    path = tmp_path / "five.yaml"
    path.write_text(
        "experiment: demo\n"
        "objective: objectives:quadratic\n"
        "metrics: [{loss: minimise}]\n"
        "variables:\n"
        "  x: {float: [2.0, 1.0]}\n"
        "  kind: {choice: [a, b]}\n"
        "  depth: {int: [1, 4], when: {knid: a}}\n"
        "search: {method: tpe, trails: 4}\n"
        "compare: {variable: kind, treatment: c, baseline: a}\n"
    )
    with pytest.raises(SpecError) as info:
        load_spec(path)
    got = [(e.line, e.field) for e in info.value.errors]
    assert got == [
        (3, "metrics.loss"),
        (5, "variables.x.float"),
        (7, "variables.depth.when.knid"),  # a rule across keys, found despite the mistakes above
        (8, "search.trails"),  # and no guess that tpe lacks its budget: the block is broken
        (9, "compare.treatment"),
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        # the compared variable is broken: its levels are unknown, so no level is called wrong
        {
            "variables": {"kind": {"choice": ["a", "a"]}},
            "compare": {"variable": "kind", "baseline": "a", "treatment": "z"},
        },
        # a condition on a broken variable: its values are unknown
        {"variables": {"kind": {"choice": [1, 1]}, "y": {"int": [0, 4], "when": {"kind": 3}}}},
        # a command's format spec over a broken variable: its values are unknown
        {
            "objective": None,
            "command": "python x.py --kind {kind:s}",
            "variables": {"kind": {"choice": ["a", "a"]}},
        },
        # a broken compare block: its metric default is not checked either
        {"compare": {"variable": "kind", "baseline": "a", "alpha": 2}, "metrics": [{"m": "maximize"}]},
    ],
)
def test_rules_that_read_a_broken_part_are_not_guessed(overrides: dict[str, object]) -> None:
    spec = {k: v for k, v in sweep_spec(**overrides).items() if v is not None}
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert len(info.value.errors) == 1, str(info.value)


@pytest.mark.parametrize(
    ("overrides", "field", "meant"),
    [
        ({"compare": {"variable": "kind", "baseline": "a", "treatment": "bb"}}, "compare.treatment", "'b'"),
        ({"compare": {"variable": "knid", "baseline": "a"}}, "compare.variable", "'kind'"),
        ({"compare": {"variable": "kind", "baseline": "a", "metric": "los"}}, "compare.metric", "'loss'"),
        (
            {"variables": {"kind": {"choice": ["a", "b"]}, "y": {"int": [0, 4], "when": {"kindd": "a"}}}},
            "variables.y.when.kindd",
            "'kind'",
        ),
        (
            {
                "variables": {
                    "kind": {"choice": ["adam", "sgd"]},
                    "y": {"int": [0, 4], "when": {"kind": "adma"}},
                }
            },
            "variables.y.when.kind",
            "'adam'",
        ),
    ],
)
def test_rules_across_keys_say_did_you_mean(overrides: dict[str, object], field: str, meant: str) -> None:
    err = _errors(**overrides)
    assert err.field == field and f"did you mean {meant}?" in err.fix


def test_numbers_are_not_typos_of_each_other() -> None:
    err = _errors(
        variables={"n": {"choice": [100, 200]}}, compare={"variable": "n", "baseline": 100, "treatment": 10}
    )
    assert err.field == "compare.treatment" and "did you mean" not in err.fix


def test_experiment_built_in_python_goes_through_the_same_model() -> None:
    spec = load_spec(sweep_spec())
    assert check_experiment(spec) is spec
    built = dataclasses.replace(spec, raw={}, replicates=0)
    with pytest.raises(SpecError) as info:
        check_experiment(built)
    assert str(info.value).startswith("<Experiment>: replicates: expected a whole number >= 1, got 0")
    ok = check_experiment(dataclasses.replace(spec, raw={}))
    assert ok.raw["variables"]["x"] == {"float": [-2.0, 2.0], "log": False}  # experiment.json gets a spec
    assert load_spec(ok.raw, root=spec.root) == spec


@pytest.mark.parametrize(
    ("replicates", "racing", "factors", "total"),
    [
        (4, None, (), 4),
        ({"min": 2, "max": 8}, Racing(2, 8), (), 8),
        ({"data": 5, "init": 2}, None, (SeedFactor("data", 5), SeedFactor("init", 2)), 10),
    ],
)
def test_replicate_forms(replicates: object, racing: object, factors: object, total: int) -> None:
    spec = load_spec(sweep_spec(replicates=replicates))
    assert (spec.racing, spec.factors, spec.replicates) == (racing, factors, total)


@pytest.mark.parametrize(
    ("replicates", "field", "words"),
    [
        ({"min": 5, "max": 2}, "replicates", "min > max"),
        ({"min": 0, "max": 2}, "replicates.min", "at least 1"),
        ({"min": 1, "max": 2, "data": 3}, "replicates", "either {min: A, max: B} or {factor: n, ...}"),
        ({"data": 100, "init": 101}, "replicates", "10000"),
        ({"x": 2}, "replicates.x", "clashes"),
        ({"seed": 2}, "replicates.seed", "clashes with a trial-table column"),
        ({"max": 3}, "replicates.min", "missing"),
        ({"data": 0}, "replicates.data", "at least 1"),
        (100000000000, "replicates", "at most 10000"),
        (0, "replicates", "at least 1"),
    ],
)
def test_bad_replicates(replicates: object, field: str, words: str) -> None:
    err = _errors(replicates=replicates)
    assert err.field == field and words in err.problem + err.fix, str(err)


def test_compare_correlation_derives_from_the_split_sizes() -> None:
    # Nadeau and Bengio's correlation of cross-validation folds: test size / total size
    variables = {"kind": {"choice": ["a", "b"]}}
    compare = {"variable": "kind", "baseline": "a", "correlation": {"test": 30, "train": 120}}
    spec = load_spec(sweep_spec(variables=variables, compare=compare))
    assert spec.compare is not None and spec.compare.correlation == 0.2


def test_compare_gains_within_confirm_rope_correlation() -> None:
    variables = {"kind": {"choice": ["a", "b"]}, "dataset": {"choice": ["d1", "d2"]}, "x": {"float": [0, 1]}}
    base = {"variable": "kind", "baseline": "a", "treatment": "b"}
    spec = load_spec(
        sweep_spec(
            variables=variables,
            compare={**base, "within": "dataset", "confirm": 10, "rope": 0.005, "correlation": 0.2},
        )
    )
    c = spec.compare
    assert (c.within, c.confirm, c.rope, c.correlation) == (("dataset",), Confirm(10, 1), 0.005, 0.2)
    spec = load_spec(
        sweep_spec(
            variables=variables,
            compare={**base, "within": ["dataset", "x"], "confirm": {"replicates": 4, "top": 3}},
        )
    )
    assert spec.compare.within == ("dataset", "x") and spec.compare.confirm == Confirm(4, 3)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"within": "nope"}, "compare.within", "is not a variable"),
        ({"within": "kind"}, "compare.within", "compared variable"),
        ({"within": "w"}, "compare.within", "conditional"),
        ({"confirm": 1}, "compare.confirm.replicates", "at least 2"),
        ({"confirm": {"replicates": 3, "top": 0}}, "compare.confirm.top", "at least 1"),
        ({"rope": 0}, "compare.rope", "> 0"),
        ({"correlation": 1.0}, "compare.correlation", "< 1"),
        ({"correlation": -0.1}, "compare.correlation", "at least 0"),
        ({"correlation": {"test": 1, "trian": 4}}, "compare.correlation", "not test and train"),
        ({"correlation": {"test": 0, "train": 4}}, "compare.correlation", "positive sizes"),
    ],
)
def test_bad_compare_fields(change: dict[str, object], field: str, words: str) -> None:
    variables = {"kind": {"choice": ["a", "b"]}, "w": {"int": [1, 3], "when": {"kind": "a"}}}
    err = _errors(variables=variables, compare={"variable": "kind", "baseline": "a", **change})
    assert err.field == field and words in err.problem + err.fix, str(err)


def test_tracking() -> None:
    spec = load_spec(sweep_spec(tracking={"mlflow": {"uri": "http://127.0.0.1:5000"}}))
    assert spec.tracking == Tracking("http://127.0.0.1:5000", "t")
    spec = load_spec(sweep_spec(tracking={"mlflow": {"uri": "file:///tmp/m", "experiment": "e1"}}))
    assert spec.tracking == Tracking("file:///tmp/m", "e1")
    assert _errors(tracking={"mlflow": {}}).field == "tracking.mlflow.uri"
    assert "did you mean 'mlflow'" in _errors(tracking={"mlfow": {"uri": "x"}}).fix


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"variables": {"n": {"int": [0, 1e26]}}}, "variables.n.int[1]", "write 1000000"),
        ({"variables": {"n": {"int": [0, 10**26]}}}, "variables.n.int[1]", "2**53"),
        ({"variables": {"x": {"float": [-1e308, 1e308]}}}, "variables.x.float", "too wide"),
        ({"variables": {"c": {"choice": [1, 2**70]}}}, "variables.c.choice[1]", "out of range"),
        ({"search": {"method": "random", "trials": 3, "seed": 2**32}}, "search.seed", "below 4294967296"),
        ({"variables": {"c": {"choice": [1, "1"]}}}, "variables.c.choice", "all of one type"),
        ({"variables": {"c": {"choice": [1, True]}}}, "variables.c.choice", "the same"),
        ({"experiment": "x" * 129}, "experiment", "at most 128 characters"),
        ({"timeout": 10**12}, "timeout", "up to a year"),
    ],
)
def test_out_of_range_and_ambiguous_values(overrides: dict[str, object], field: str, words: str) -> None:
    err = _errors(**overrides)
    assert err.field == field and words in err.problem + err.fix, str(err)


def test_format_specs_in_a_command_are_checked_when_reading(tmp_path: Path) -> None:
    base = {
        "experiment": "c",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"float": [0.1, 1.0]}, "opt": {"choice": ["sgd", "adam"]}},
        "search": {"method": "random", "trials": 2},
    }
    assert load_spec({**base, "command": "python x.py --lr {lr:.3g} --opt {opt!r:>8}"}, root=tmp_path)
    for bad in ("{lr:zz}", "{opt:d}", "{lr!x}"):
        with pytest.raises(SpecError, match="cannot format") as info:
            load_spec({**base, "command": f"python x.py {bad}"}, root=tmp_path)
        assert info.value.field == "command"


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("experiment: a\nobjective: m:f\nmetrics: [a: maximize]\nvariables: {x: 1, x: 2}\n")
    with pytest.raises(SpecError, match=r"dup\.yaml:4:19: the key 'x' is given twice \(first at line 4\)"):
        load_spec(path)
    merged = tmp_path / "merge.yaml"  # a YAML merge may be overridden: that is not a duplicate
    merged.write_text(
        textwrap.dedent("""\
        base: &base {x: {float: [0, 1]}, y: 1}
        """)
    )
    merged.write_text(
        "experiment: a\nobjective: m:f\nmetrics: [a: maximize]\nsearch: {method: random, trials: 2}\n"
        "variables:\n  <<: {x: {float: [0, 1]}, y: 1}\n  y: 2\n"
    )
    assert load_spec(merged).variable("y").value == 2


def test_an_alias_bomb_stops_early_in_little_memory(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 12)
    ]
    path = tmp_path / "bomb.yaml"
    body = "\n".join("  " + line for line in lines)
    path.write_text(
        "experiment: b\nobjective: m:f\nmetrics: [a: maximize]\nvariables: {x: 1}\n"
        f"components:\n  meta:\n    value:\n{textwrap.indent(body, '    ')}\n"
    )
    tracemalloc.start()
    with pytest.raises(SpecError, match="expands to more than 100000 values"):
        load_spec(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 200 * 2**20  # 10 * 6**11 values would need hundreds of GB


def test_reading_is_pure(tmp_path: Path) -> None:
    """No folder, module or Optuna is needed to read a spec: a results folder copied elsewhere reads."""
    spec = load_spec(
        {
            "experiment": "p",
            "command": "python x.py",
            "workdir": "missing/folder",
            "metrics": [{"m": "maximize"}],
            "variables": {"x": 1},
            "pruner": {"method": "percentile", "percentile": 150},
            "components": {"d": "no/such/file.csv"},
            "search": {"method": "grid"},
        },
        root=tmp_path,
    )
    assert isinstance(spec, Experiment) and not (tmp_path / "missing").exists()
    assert spec.components[0].path == str(tmp_path / "no/such/file.csv")
