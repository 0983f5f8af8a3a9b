"""Small objectives for the resume, failure and interrupt tests: each run leaves a trace on disk.

The folder named by SWEEPER_TEST_LOG gets one file per call, so a test can count which runs were
really executed (and not just read back from the table).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any


def _trace(**fields: object) -> None:
    folder = os.environ.get("SWEEPER_TEST_LOG")
    if folder:
        name = "-".join(f"{k}={v}" for k, v in fields.items())
        Path(folder, f"{name}-{uuid.uuid4().hex[:8]}").touch()


def quad(x: float, y: str, seed: int) -> dict[str, float]:
    """A quadratic bowl; sleeps SWEEPER_TEST_SLEEP seconds (default 0) to make runs take time, or
    30 s once the file SWEEPER_TEST_SLOW names exists."""
    _trace(x=repr(x), y=y, seed=seed)
    slow = os.environ.get("SWEEPER_TEST_SLOW")
    time.sleep(30 if slow and Path(slow).exists() else float(os.environ.get("SWEEPER_TEST_SLEEP", "0")))
    return {"loss": (x - 0.3) ** 2 + (0.1 if y == "b" else 0.0) + (seed % 10) * 1e-4, "x2": x * x}


def flaky(x: float, seed: int) -> float:
    """Fails while the file SWEEPER_TEST_FAIL exists and x > 0.5."""
    _trace(x=repr(x), seed=seed)
    flag = os.environ.get("SWEEPER_TEST_FAIL")
    if flag and Path(flag).exists() and x > 0.5:
        raise RuntimeError(f"flaky failure at x={x}")
    return x


def misbehave(mode: str, seed: int) -> float:
    """Each mode misbehaves the way real training code does."""
    if mode == "ok":
        return 1.0
    if mode == "raise":
        raise ValueError("bad batch")
    if mode == "nan":
        return math.nan
    if mode == "inf":
        return math.inf
    if mode == "exit":
        os._exit(3)
    if mode == "segv":
        import ctypes

        ctypes.string_at(0)
    if mode == "sleep":
        time.sleep(60)
    return 0.0


def quad_shifted(x: float, y: str, seed: int) -> dict[str, float]:
    """Another objective with quad's signature (a changed objective: is refused on resume)."""
    return {"loss": (x - 0.7) ** 2}


def loose(x: float, **others: object) -> float:
    """Takes any other variables: a spec may add or drop them (what a refusal names)."""
    return x


def nonfinite(x: float, y: float) -> dict[str, float]:
    """NaN and inf in a fair share of the search space, for the samplers to cope with."""
    loss = math.nan if x < 0.3 else (math.inf if x > 0.8 else (x - 0.5) ** 2 + y)
    return {"loss": loss, "other": -math.inf if y > 0.7 else y}


def paced(x: float, pause: float, seed: int) -> float:
    """Sleeps ``pause`` seconds (a constant of the sweep, so workers of any cluster see it)."""
    time.sleep(pause)
    return (x - 0.3) ** 2


def curve(x: float, trial: Any) -> float:
    """Reports a short learning curve, as training code does."""
    for step in range(3):
        trial.report(step, loss=x / (step + 1))
    return x / 3
