"""Objectives for the racing and seed-factor tests: noise shared by seed plus noise of the trial's own."""

from __future__ import annotations

import random
import time


def noisy(x: float, seed: int, pause: float = 0.0) -> float:
    """A bowl at x = 0.3; replicate r's seed moves every trial alike (0.05) and each a little (0.02)."""
    time.sleep(pause)
    shared = random.Random(seed).gauss(0.0, 0.05)
    own = random.Random(f"{seed}:{x!r}").gauss(0.0, 0.02)
    return (x - 0.3) ** 2 + shared + own


def split_only(x: float, data_seed: int, init_seed: int) -> float:
    """Varies with the data split alone: the decomposition must give all the spread to ``data``."""
    return x + random.Random(data_seed).gauss(0.0, 1.0)


def init_only(x: float, data_seed: int, init_seed: int) -> float:
    return x + random.Random(init_seed).gauss(0.0, 1.0)


def both(x: float, data_seed: int, init_seed: int, seed: int) -> float:
    """data moves it most, init less, the rest is noise of the cell (seed names the cell)."""
    data = random.Random(data_seed).gauss(0.0, 1.0)
    init = random.Random(init_seed).gauss(0.0, 0.4)
    return x + data + init + random.Random(seed).gauss(0.0, 0.2)
