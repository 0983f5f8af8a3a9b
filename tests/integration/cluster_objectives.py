"""Objectives for the cluster tests; copied next to each test's sweep file (they travel with it)."""

from __future__ import annotations

import time


def slow_quadratic(x: float, y: int, seed: int, pause: float = 0.3) -> dict[str, float]:
    """Long enough that runs overlap, so Ray spreads them over every node of the job."""
    time.sleep(pause)
    return {"loss": (x - 0.5) ** 2 + (y - 2) ** 2 + (seed % 1000) / 1e6}
