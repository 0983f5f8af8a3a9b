"""Objectives the benchmark sweeps: a 20 ms sleep and a zero-cost quadratic of three floats."""

from __future__ import annotations

import time


def quadratic(x: float, y: float, z: float) -> float:
    return (x - 0.3) ** 2 + (y + 0.2) ** 2 + (z - 0.1) ** 2


def sleep20(x: float, y: float, z: float) -> float:
    time.sleep(0.02)
    return quadratic(x, y, z)
