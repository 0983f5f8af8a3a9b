"""The cluster tests' objective, and the sweep file they write next to a copy of this module.

The copy travels with the sweep (Slurm: the shared folder; Ray Jobs: the job's working_dir).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def slow_quadratic(x: float, y: int, seed: int, pause: float = 0.3) -> dict[str, float]:
    """Long enough that runs overlap, so Ray spreads them over every node of the job."""
    time.sleep(pause)
    return {"loss": (x - 0.5) ** 2 + (y - 2) ** 2 + (seed % 1000) / 1e6}


def always_fails(x: float, y: int, seed: int, pause: float = 0.3) -> dict[str, float]:
    raise ValueError(f"no loss for x={x}")


def write_sweep(folder: Path, *, name: str, trials: int, pause: float, extra: str = "") -> Path:
    """``folder/sweep.yaml`` over slow_quadratic (2 replicates, seed 3) plus ``extra`` YAML."""
    folder.mkdir(parents=True)
    shutil.copy(__file__, folder / "cluster_objectives.py")
    sweep = folder / "sweep.yaml"
    sweep.write_text(f"""
experiment: {name}
objective: cluster_objectives:slow_quadratic
metrics: [loss: minimize]
variables:
  x: {{float: [-2.0, 2.0]}}
  y: {{int: [0, 4]}}
  pause: {pause}
search: {{method: random, trials: {trials}, seed: 3}}
replicates: 2
{extra}""")
    return sweep
