"""An objective the live-view tests can hold mid-sweep: after SWEEPER_TEST_PAUSE_AT calls it waits
while the file SWEEPER_TEST_GATE exists, so a test sees a sweep that is running, then lets it end."""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path
from typing import Any


def gated(x: float, y: str, seed: int, trial: Any) -> dict[str, float]:
    log = Path(os.environ["SWEEPER_TEST_LOG"])
    done = len(list(log.iterdir()))
    (log / uuid.uuid4().hex).touch()
    gate = Path(os.environ["SWEEPER_TEST_GATE"])
    if done >= int(os.environ.get("SWEEPER_TEST_PAUSE_AT", "0")):
        while gate.exists():
            time.sleep(0.05)
    time.sleep(float(os.environ.get("SWEEPER_TEST_SLEEP", "0")))
    noise = random.Random(f"{seed}-{y}").gauss(0, 0.01)
    for step in range(3):  # a learning curve for the history/ table
        trial.report(step, loss=(x - 0.3) ** 2 + 1.0 / (step + 1))
    return {"loss": (x - 0.3) ** 2 + (0.1 if y == "b" else 0.0) + noise}


def features(out: str) -> str:
    """A shared job: runs once on the driver; its output reaches every run (from the bucket, on S3)."""
    Path(out, "features.txt").write_text("scaled by 2\n")
    return "features.txt"


def stored(x: float, y: str, seed: int, trial: Any, features: str, source: str) -> dict[str, float]:
    """``gated``, plus an artifact and a model component per run made from the declared components."""
    (trial.artifact_dir / "model.txt").write_text(
        f"{x} {y} {seed}\n{Path(features).read_text()}{Path(source).read_text()}from {features}\n"
    )
    trial.log_component("model", "model.txt")
    return gated(x, y, seed, trial)
