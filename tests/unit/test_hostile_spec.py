"""Hostile input: every sweep file, dict or name either loads or raises sweeper's own error.

Property-based (hypothesis): random values, mutations of a valid spec at every depth, random and
mutated YAML text. Anything but an :class:`~sweeper.errors.SweeperError` (a TypeError, a
RecursionError, a ValueError from deep inside) is a bug: users must get file, field and fix.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeper.errors import SpecError, SweeperError
from sweeper.results.folder import experiment_folder
from sweeper.spec.experiment import Experiment, Metric, Variable
from sweeper.spec.model import load_spec

VALID: dict[str, Any] = {
    "experiment": "hostile",
    "hypothesis": "momentum helps",
    "objective": "toy:fit",
    "metrics": [{"test_mse": "minimize"}, {"slope_error": "minimize"}],
    "variables": {
        "optimizer": {"choice": ["sgd", "momentum"]},
        "lr": {"float": [1.0e-3, 0.5], "log": True},
        "steps": {"int": [10, 200], "step": 10},
        "momentum": {"float": [0.5, 0.95], "when": {"optimizer": "momentum"}},
        "batch": 32,
    },
    "search": {"method": "tpe", "trials": 30, "seed": 0, "deterministic": False, "concurrency": 4},
    "replicates": 3,
    "resources": {"cpus": 1, "gpus": 0.5, "memory": "2GB", "custom": {"a100": 1}},
    "compare": {
        "variable": "optimizer",
        "treatment": "momentum",
        "baseline": "sgd",
        "metric": "test_mse",
        "alpha": 0.05,
    },
    "timeout": "30m",
    "max_failures": 10,
}
# The other half of the file format: a command objective, pruning, components and a Slurm block.
VALID_COMMAND: dict[str, Any] = {
    "experiment": "hostile-cmd",
    "command": "python train.py --lr {lr} --seed {seed} --data {train_data}",
    "shell": False,
    "metrics": {"acc": "maximize"},
    "variables": {"lr": {"float": [1.0e-4, 1.0e-1], "log": True}, "layers": {"int": [1, 4]}},
    "components": {
        "train_data": {"path": "data/train.npz", "kind": "dataset"},
        "notes": {"value": {"source": "UCI"}, "kind": "metadata"},
    },
    "pruner": {"method": "percentile", "percentile": 25.0, "n_startup_trials": 5},
    "search": {"method": "random", "trials": 10},
    "slurm": {
        "nodes": 2,
        "partition": "gpu",
        "time": "01:00:00",
        "setup": ["module load cuda"],
        "requeue": True,
    },
}
WORDS = [
    "experiment",
    "objective",
    "metrics",
    "variables",
    "search",
    "method",
    "trials",
    "choice",
    "int",
    "float",
    "const",
    "step",
    "log",
    "when",
    "replicates",
    "resources",
    "compare",
    "timeout",
    "max_failures",
    "maximize",
    "minimize",
    "grid",
    "random",
    "tpe",
    "nsga2",
    "bruteforce",
    "cmaes",
    "qmc",
    "seed",
    "memory",
    "gpus",
    "cpus",
    "custom",
    "slurm",
    "trial",
    "status",
    "lr",
    "optimizer",
    "momentum",
    "sgd",
    "toy:fit",
    "1GB",
    "30m",
    "../x",
    "",
    "command",
    "shell",
    "workdir",
    "pruner",
    "components",
    "path",
    "value",
    "kind",
    "job",
    "median",
    "hyperband",
    "percentile",
    "{lr}",
    "{nope}",
    "nodes",
    "setup",
    "auto",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.binary(max_size=4),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(st.sampled_from(WORDS), st.text(max_size=6), st.integers(), st.booleans(), st.none()),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


def loads_or_refuses(source: Any, **kwargs: Any) -> None:
    try:
        spec = load_spec(source, **kwargs)
    except SweeperError as exc:
        assert str(exc).strip()  # a message, always
        return
    assert isinstance(spec, Experiment)


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec with a few random edits: replace, delete, or add a key at any depth."""
    data = copy.deepcopy(draw(st.sampled_from([VALID, VALID_COMMAND])))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths(data)))
        if not path:
            continue
        *head, last = path
        parent = data
        for k in head:
            parent = parent[k]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[last]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(WORDS))] = draw(values)
        else:
            parent[last] = draw(values)
    return data


def test_the_valid_specs_load() -> None:
    spec = load_spec(VALID)
    assert spec.timeout == 1800 and spec.max_failures == 10 and spec.resources.memory == 2 * 2**30
    assert load_spec(VALID_COMMAND).command is not None


@settings(max_examples=400, deadline=None)
@given(values)
def test_any_value_as_a_whole_spec(data: Any) -> None:
    if isinstance(data, dict):
        loads_or_refuses(data)
    else:
        with pytest.raises(SweeperError):
            load_spec({"experiment": "x", "objective": "m:f", "metrics": data, "variables": data})


@settings(max_examples=int(os.environ.get("SWEEPER_HOSTILE_EXAMPLES", 700)), deadline=None)
@given(mutated())
def test_mutated_specs(data: dict[str, Any]) -> None:
    loads_or_refuses(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=300))
def test_random_yaml_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(path)


VALID_YAML = yaml.safe_dump(VALID, sort_keys=False)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(VALID_YAML)),
            st.integers(0, 12),
            st.text(alphabet=string.printable + "ü€\t", max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_yaml_text(tmp_path: Path, edits: list[tuple[int, int, str]]) -> None:
    text = VALID_YAML
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(path)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,  # deep nesting: RecursionError inside the YAML parser
        "a: &a [*a]",  # a self-referencing alias
        "experiment: !!python/object/apply:os.system [echo hi]",  # unsafe tag
        "\x00\x01binary",
        "experiment: x\nexperiment: y\n",
        "- just\n- a list\n",
        "",
    ],
)
def test_nasty_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    loads_or_refuses(path)


def test_undecodable_file_and_folders(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"experiment: \xff\xfe\x00")
    with pytest.raises(SpecError, match="UTF-8"):
        load_spec(tmp_path / "bad.yaml")
    with pytest.raises(SpecError, match="no such sweep file"):
        load_spec(tmp_path)  # a folder
    with pytest.raises(SpecError, match="no such sweep file"):
        load_spec(tmp_path / "missing.yaml")


NASTY_NAMES = [
    "../escape",
    "a/b",
    "/abs",
    "..",
    ".",
    "a/../../b",
    "with space",
    "quote'd",
    'dq"',
    "semi;rm -rf ~",
    "$(touch pwned)",
    "`id`",
    "back\\slash",
    "new\nline",
    "nul\x00byte",
    "-rf",
    "~",
    "*",
    "a..b",
    "x" * 200,
    "tab\there",
    "ünïcode/..",
    "",
]


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_experiment_names_cannot_escape_the_results_root(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match="experiment"):
        load_spec({**VALID, "experiment": name})
    # and an Experiment built in Python, past the sweep-file validation, is refused too
    spec = Experiment(
        name=name,
        objective="toy:fit",
        metrics=(Metric("m", "minimize"),),
        variables=(Variable("x", "const", value=1),),
    )
    with pytest.raises(SweeperError, match="not a safe folder name"):
        experiment_folder(spec, tmp_path / "results")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["results"])


def test_a_symlink_named_like_the_experiment_cannot_lead_outside(tmp_path: Path) -> None:
    outside, results = tmp_path / "outside", tmp_path / "results"
    outside.mkdir()
    results.mkdir()
    (results / "hostile").symlink_to(outside)
    with pytest.raises(SweeperError, match="would leave the results folder"):
        experiment_folder(load_spec(VALID), results)
