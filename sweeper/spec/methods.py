"""The search methods registry: every method the sweep file may name, what it does and how it proposes.

One home for the fact "which methods exist and what each needs": the spec validates ``search.method``
against it and describes each method from it (so a new method is one row here plus its proposer in
:mod:`sweeper.search.proposers`), the search stage picks a proposer from it. It lives in the spec, the
lower stage, so both read it without an upward import; plain data that imports nothing.
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
    about: str  # what the sweep file's description of search.method says of it
    multi_objective: bool = False  # optimises every metric (else the primary one only)


METHODS: dict[str, MethodInfo] = {
    "grid": MethodInfo(
        "enumerated", "every point, enumerated by sweeper; needs `step` on floats; `trials` optional cap"
    ),
    "random": MethodInfo("streamed", "independent uniform draws"),
    "tpe": MethodInfo("asked", "Optuna's TPE, with constant liar for trials in flight"),
    "cmaes": MethodInfo("asked", "Optuna's CMA-ES"),
    "qmc": MethodInfo("streamed", "scrambled Sobol points"),
    "nsga2": MethodInfo("asked", "multi-objective over every metric", multi_objective=True),
    "bruteforce": MethodInfo(
        "enumerated",
        "the grid's points in a seeded random order, so a capped run is a uniform subset; points are "
        "computed from their number, so `trials: 5` over a space of 10^12 points costs 5 points, and a "
        "conditional grid is counted branch by branch",
    ),
}


def is_enumerated(method: str) -> bool:
    """Whether the method walks the whole grid (so a budget is optional and floats need a step)."""
    return METHODS[method].proposer == "enumerated"
