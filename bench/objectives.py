"""Objectives the benchmarks sweep: sleeps (20 ms, or any length) and a zero-cost quadratic of 3 floats."""

from __future__ import annotations

import time


def quadratic(x: float, y: float, z: float) -> float:
    return (x - 0.3) ** 2 + (y + 0.2) ** 2 + (z - 0.1) ** 2


def sleep20(x: float, y: float, z: float) -> float:
    time.sleep(0.02)
    return quadratic(x, y, z)


def nap(x: float, y: float, z: float, seconds: float) -> float:
    """The quadratic after ``seconds`` of sleep: a trial that needs a slot but no core."""
    time.sleep(seconds)
    return quadratic(x, y, z)
