"""Grid enumeration, conditional spaces and seed derivation."""

from __future__ import annotations

import numpy as np

from sweeper import load_spec
from sweeper.search import space
from sweeper.search.seeds import replicate_seed, replicate_seeds
from tests.conftest import sweep_spec


def _vars(variables):
    return load_spec(sweep_spec(variables=variables, search={"method": "grid"})).variables


def test_grid_enumerates_the_full_product_in_stable_order():
    vs = _vars(
        {
            "opt": {"choice": ["adam", "sgd"]},
            "epochs": {"int": [10, 30], "step": 10},
            "lr": {"float": [0.1, 0.3], "step": 0.1},
            "data": "cifar",
        }
    )
    points = list(space.grid(vs))
    assert len(points) == space.grid_size(vs) == 2 * 3 * 3
    assert points[0] == {"opt": "adam", "epochs": 10, "lr": 0.1, "data": "cifar"}
    assert points[-1] == {"opt": "sgd", "epochs": 30, "lr": 0.3, "data": "cifar"}
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert {p["lr"] for p in points} == {0.1, 0.2, 0.3}  # exact grid values, no float drift


def test_grid_branches_conditional_variables_only_when_active():
    vs = _vars(
        {
            "model": {"choice": ["custom", "resnet50"]},
            "width": {"int": [16, 48], "step": 16, "when": {"model": "custom"}},
            "opt": {"choice": ["adam", "sgd"]},
        }
    )
    points = list(space.grid(vs))
    custom = [p for p in points if p["model"] == "custom"]
    resnet = [p for p in points if p["model"] == "resnet50"]
    assert len(custom) == 3 * 2 and len(resnet) == 2
    assert all("width" not in p for p in resnet)
    assert space.grid_size(vs) == 8


def test_seeds_are_shared_per_replicate_and_independent_of_count():
    assert replicate_seeds(0, 5)[:3] == replicate_seeds(0, 3)
    assert len(set(replicate_seeds(0, 50))) == 50
    assert replicate_seeds(0, 3) != replicate_seeds(1, 3)
    expected = int(np.random.SeedSequence(7, spawn_key=(2,)).generate_state(1, dtype=np.uint32)[0])
    assert replicate_seed(7, 2) == expected
    assert all(0 <= s < 2**32 for s in replicate_seeds(123, 10))
