"""The variable space: sampling through an Optuna trial, and enumeration for grid search.

Variables are taken in declaration order; a conditional one is sampled only when the variables it
depends on (always declared earlier) hold one of its ``when`` values. Inactive variables are left out
of the trial's params, so the objective's defaults apply and the table column stays null.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.model import Variable


def suggest(trial: optuna.Trial, variables: Sequence[Variable]) -> dict[str, Any]:
    """Sample one variable set through ``trial`` (define-by-run, so conditionals just work)."""
    params: dict[str, Any] = {}
    for v in variables:
        if not v.active(params):
            continue
        if v.kind == "const":
            params[v.name] = v.value
        elif v.kind == "choice":
            params[v.name] = trial.suggest_categorical(v.name, v.choices)
        elif v.kind == "int":
            params[v.name] = trial.suggest_int(
                v.name,
                int(v.low),  # type: ignore[arg-type]
                int(v.high),  # type: ignore[arg-type]
                step=int(v.step or 1),
                log=v.log,
            )
        else:
            params[v.name] = trial.suggest_float(
                v.name,
                float(v.low),  # type: ignore[arg-type]
                float(v.high),  # type: ignore[arg-type]
                step=v.step,
                log=v.log,
            )
    return params


def distributions(variables: Sequence[Variable], params: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the sampled (non-constant) params, to rebuild or enqueue trials."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for v in variables:
        if v.name not in params or v.kind == "const":
            continue
        if v.kind == "choice":
            out[v.name] = d.CategoricalDistribution(v.choices)
        elif v.kind == "int":
            out[v.name] = d.IntDistribution(int(v.low), int(v.high), step=int(v.step or 1), log=v.log)  # type: ignore[arg-type]
        else:
            out[v.name] = d.FloatDistribution(float(v.low), float(v.high), step=v.step, log=v.log)  # type: ignore[arg-type]
    return out


def levels(v: Variable) -> list[Any]:
    """Every value a variable can take in a grid (floats need a step; the spec enforces it)."""
    if v.kind == "const":
        return [v.value]
    if v.kind == "choice":
        return list(v.choices)
    low, high, step = v.low, v.high, v.step or 1
    n = round((high - low) / step + 1e-9) + 1  # type: ignore[operator]
    values = [low + i * step for i in range(n)]  # type: ignore[operator]
    if v.kind == "int":
        return [int(x) for x in values]
    return [round(float(x), 12) for x in values]


def grid(variables: Sequence[Variable]) -> Iterator[dict[str, Any]]:
    """Enumerate the whole space in a stable order; a conditional variable branches only when active."""

    def expand(i: int, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(variables):
            yield dict(params)
            return
        v = variables[i]
        if not v.active(params):
            yield from expand(i + 1, params)
            return
        for value in levels(v):
            params[v.name] = value
            yield from expand(i + 1, params)
            del params[v.name]

    yield from expand(0, {})


def grid_size(variables: Sequence[Variable]) -> int:
    """Number of grid points, without building them when the space has no conditionals."""
    if any(v.when for v in variables):
        return sum(1 for _ in grid(variables))
    return math.prod(len(levels(v)) for v in variables)
