"""Objectives the tests sweep: deterministic functions of their variables and seed."""

from __future__ import annotations

import math


def quadratic(x: float, y: int, kind: str, seed: int) -> dict[str, float]:
    noise = (seed % 1000) / 1e6
    return {"loss": (x - 0.5) ** 2 + (y - 2) ** 2 + (0.1 if kind == "b" else 0.0) + noise, "x_abs": abs(x)}


def flaky(x: float, y: int, kind: str, seed: int) -> float:
    if y == 3:
        raise ValueError(f"y=3 is broken (seed {seed})")
    return x * x + y


def chatty(x: float, y: int, kind: str, seed: int) -> float:
    """Prints as researchers do; kind "b" also warns on stderr, and y == 4 fails after printing."""
    import sys

    print(f"training x={x} y={y} seed={seed}")
    if kind == "b":
        print(f"warning: kind b at y={y}", file=sys.stderr)
    if y == 4:
        raise RuntimeError("diverged")
    return x


def returns_text(x: float, y: int, kind: str) -> str:
    return "not a number"


def nan_for_b(x: float, y: int, kind: str) -> float:
    return math.nan if kind == "b" else x


def conditional(model: str, width: int = -1, depth: int = -1) -> float:
    return float(width if model == "custom" else depth)


def slow(x: float, y: int, kind: str) -> float:
    import time

    time.sleep(0.05)
    return x


def stalls_when_told(x: float, y: int, kind: str) -> float:
    """A run of kind "stall" sleeps a minute: the batch to cancel is surely still running."""
    import time

    time.sleep(60.0 if kind == "stall" else 0.0)
    return x * x


def crash(x: float, y: int, kind: str) -> float:
    """Kills its own process, as a segfault or the OOM killer would (never call it in the driver)."""
    import os

    os._exit(3)
