"""Replicate seeds: replicate r gets the same seed in every trial (common random numbers).

Derived from (experiment seed, r) with numpy's SeedSequence, so seeds are independent streams and do
not depend on how many replicates there are or in which order runs execute.
"""

from __future__ import annotations

import numpy as np


def replicate_seed(experiment_seed: int, replicate: int) -> int:
    """A 32-bit seed, accepted by numpy, random, torch and scikit-learn alike."""
    seq = np.random.SeedSequence(experiment_seed, spawn_key=(replicate,))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def replicate_seeds(experiment_seed: int, replicates: int) -> list[int]:
    return [replicate_seed(experiment_seed, r) for r in range(replicates)]
