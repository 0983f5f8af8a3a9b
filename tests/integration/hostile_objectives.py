"""Objectives that misbehave on purpose, for the hostile-input and fault tests."""

from __future__ import annotations

import sys


def exits(mode: str) -> float:
    """``sys.exit`` from inside a run, with the codes users write."""
    if mode == "exit0":
        sys.exit(0)
    if mode == "exit5":
        raise SystemExit(5)
    return 1.0


def huge(x: int) -> dict[str, int]:
    """An integer metric far beyond a float's range for one trial only."""
    return {"value": 10**400 if x == 1 else x}


def total(**values: int) -> float:
    """Any number of int variables: their sum."""
    return float(sum(values.values()))
