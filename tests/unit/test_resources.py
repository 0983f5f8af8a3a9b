"""Per-run resources: plain amounts, amounts that depend on variables, and the checks against nodes."""

from __future__ import annotations

import pytest

from sweeper.backends.ray import fit, task_options, unplaceable
from sweeper.errors import SpecError
from sweeper.spec.experiment import Resources
from sweeper.spec.model import load_spec


def _spec(resources):
    return load_spec(
        {
            "experiment": "r",
            "objective": "m:f",
            "metrics": [{"loss": "minimize"}],
            "variables": {"model": {"choice": ["resnet50", "vit", "mlp"]}, "x": {"float": [0, 1]}},
            "search": {"method": "random", "trials": 2},
            "resources": resources,
        }
    )


def test_plain_amounts():
    r = _spec({"cpus": 2, "gpus": 0.25, "memory": "2GiB", "custom": {"accelerator_type_a100": 1}}).resources
    assert r == Resources(2.0, 0.25, 2 << 30, (("accelerator_type_a100", 1.0),))
    assert r.resolve({"model": "vit"}) is r
    assert task_options(r) == {
        "num_cpus": 2.0,
        "num_gpus": 0.25,
        "max_retries": 0,
        "memory": 2 << 30,
        "resources": {"accelerator_type_a100": 1.0},
    }


def test_amounts_depend_on_variables_first_match_wins():
    r = _spec(
        {
            "cpus": 1,
            "gpus": [
                {"when": {"model": "resnet50"}, "value": 1},
                {"when": {"model": ["vit", "resnet50"]}, "value": 0.5},
                {"value": 0.25},
            ],
            "custom": {"a100": {"when": {"model": "resnet50"}, "value": 1}},
        }
    ).resources
    assert r.resolve({"model": "resnet50"}) == Resources(1.0, 1.0, None, (("a100", 1.0),))
    assert r.resolve({"model": "vit"}) == Resources(1.0, 0.5, None, (("a100", 0.0),))
    assert r.resolve({"model": "mlp"}) == Resources(1.0, 0.25, None, (("a100", 0.0),))
    assert len(r.shapes()) == 6  # 3 GPU amounts x 2 a100 amounts, checked against the nodes
    assert "resources" not in task_options(r.resolve({"model": "mlp"}))  # zero custom: not asked


@pytest.mark.parametrize(
    ("resources", "field", "words"),
    [
        ({"gpus": {"when": {"model": "bert"}, "value": 1}}, "resources.gpus.when.model", "not one of"),
        ({"gpus": {"when": {"depth": 3}, "value": 1}}, "resources.gpus.when.depth", "no variable"),
        ({"gpus": [{"when": {"model": "vit"}, "value": 1.5}]}, "resources.gpus[0].value", "fraction"),
        ({"cpus": {"when": {"model": "vit"}}}, "resources.cpus.value", "missing"),
        ({"cpus": [3]}, "resources.cpus[0]", "expected {when"),
        ({"gpus": []}, "resources.gpus", "empty"),
    ],
)
def test_bad_cases_name_the_field(resources, field, words):
    with pytest.raises(SpecError) as err:
        _spec(resources)
    assert field in str(err.value) and words in str(err.value)


def test_fit_counts_per_node_and_refuses_what_no_node_has():
    nodes = [{"CPU": 1.0, "memory": 4e9}, {"CPU": 1.0, "GPU": 1.0, "memory": 4e9}]
    spec = _spec({"cpus": 2})
    assert [fit(n, spec.resources) for n in nodes] == [0, 0]  # 2 CPUs in all, but not on one node
    message = unplaceable(spec.resources, nodes, spec)
    assert "asks for 2 CPU" in message and "largest has 1 CPU" in message and "resources.cpus" in message
    quarter = Resources(0.25, 0.25)
    assert [fit(n, quarter) for n in nodes] == [0, 4]
