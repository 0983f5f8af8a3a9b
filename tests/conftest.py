"""Shared test set-up: a quiet Ray that workers can import sweeper from, and small sweep builders."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ray workers and subprocess CLIs import sweeper (and test objectives) from this checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")) if p
)


@pytest.fixture(scope="session")
def ray_session():
    """One embedded 2-CPU Ray for the tests that need one; sweeper reuses a connected driver."""
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error"
        )
    yield ray
    ray.shutdown()


def sweep_spec(**overrides: Any) -> dict[str, Any]:
    """A small valid spec dict over tests/objectives.py; override any top-level key."""
    spec: dict[str, Any] = {
        "experiment": "t",
        "objective": "objectives:quadratic",
        "metrics": [{"loss": "minimize"}, {"x_abs": "minimize"}],
        "variables": {"x": {"float": [-2.0, 2.0]}, "y": {"int": [0, 4]}, "kind": {"choice": ["a", "b"]}},
        "search": {"method": "random", "trials": 6, "seed": 0},
        "replicates": 2,
    }
    spec.update(overrides)
    return spec


@pytest.fixture
def python() -> str:
    return sys.executable
