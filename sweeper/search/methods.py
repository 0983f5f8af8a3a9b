"""The search methods registry: every method the sweep file may name, and how it proposes trials.

One home for the fact "which methods exist and what each needs": the spec validates ``search.method``
against it (so a new method is one row here plus its proposer), the searcher picks a proposer from it.
Plain data that imports nothing, so the spec can read it without pulling in the search stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Method = Literal["grid", "random", "tpe", "cmaes", "qmc", "nsga2", "bruteforce"]
# enumerated: every grid point once, in a stable (grid) or seeded shuffled (bruteforce) order;
# streamed: trial k's point drawn from (seed, k), nothing learns from results;
# asked: Optuna ask/tell, the sampler learns from every told trial.
ProposerKind = Literal["enumerated", "streamed", "asked"]


@dataclass(frozen=True, slots=True)
class MethodInfo:
    proposer: ProposerKind
    multi_objective: bool = False  # optimises every metric (else the primary one only)


METHODS: dict[str, MethodInfo] = {
    "grid": MethodInfo("enumerated"),
    "random": MethodInfo("streamed"),
    "tpe": MethodInfo("asked"),
    "cmaes": MethodInfo("asked"),
    "qmc": MethodInfo("streamed"),
    "nsga2": MethodInfo("asked", multi_objective=True),
    "bruteforce": MethodInfo("enumerated"),
}


def is_enumerated(method: str) -> bool:
    """Whether the method walks the whole grid (so a budget is optional and floats need a step)."""
    return METHODS[method].proposer == "enumerated"
