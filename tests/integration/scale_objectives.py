"""Objectives for the multi-node, node-loss and resource tests: they report where they ran."""

from __future__ import annotations

import os
import time


def nap(x: float, kind: str, seconds: float = 0.2) -> dict[str, float]:
    """Sleeps, then reports x and the GPU ids Ray gave it (-1: none visible)."""
    time.sleep(seconds)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    return {
        "value": x,
        "gpu": float(visible.split(",")[0]) if visible else -1.0,
        "gpus_seen": float(len(visible.split(","))) if visible else 0.0,
    }
