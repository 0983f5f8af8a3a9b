"""Replicate seeds: replicate r gets the same seed in every trial (common random numbers).

Derived from (experiment seed, r) with numpy's SeedSequence, so seeds are independent streams and do
not depend on how many replicates there are or in which order runs execute.

Seed factors (``replicates: {data: 5, init: 2}``) run the full factorial: replicate r is one cell
(one level per factor) and gets, beside its own ``seed``, one seed per factor from that factor's own
stream. ``seed`` names the whole cell, so pairing on ``seed`` pairs on the full seed tuple.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sweeper.spec.experiment import Experiment, SeedFactor


def replicate_seed(experiment_seed: int, replicate: int) -> int:
    """A 32-bit seed, accepted by numpy, random, torch and scikit-learn alike."""
    seq = np.random.SeedSequence(experiment_seed, spawn_key=(replicate,))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def replicate_seeds(experiment_seed: int, replicates: int) -> list[int]:
    return [replicate_seed(experiment_seed, r) for r in range(replicates)]


FACTOR_STREAM = 1 << 21  # first spawn-key word of factor streams: apart from replicate streams (r,)


def factor_seed(experiment_seed: int, factor: str, level: int) -> int:
    """The seed of level ``level`` of one seed factor: its own SeedSequence stream, keyed by its name,
    so adding, removing or reordering other factors never changes it."""
    tag = zlib.crc32(factor.encode())
    seq = np.random.SeedSequence(experiment_seed, spawn_key=(FACTOR_STREAM, tag, level))
    return int(seq.generate_state(1, dtype=np.uint32)[0])


def seed_column(factor: str) -> str:
    """The table column and the objective's keyword argument of a factor: ``data`` -> ``data_seed``."""
    return f"{factor}_seed"


def factor_levels(factors: Sequence[SeedFactor], replicate: int) -> tuple[int, ...]:
    """The level of each factor in replicate r of the full factorial (the last factor varies fastest)."""
    levels = []
    for f in reversed(factors):
        replicate, level = divmod(replicate, f.n)
        levels.append(level)
    return tuple(reversed(levels))


def factor_seeds(experiment_seed: int, factors: Sequence[SeedFactor], replicate: int) -> dict[str, int]:
    """{``data_seed``: ..., ``init_seed``: ...} of replicate r; empty without factors."""
    levels = factor_levels(factors, replicate)
    return {
        seed_column(f.name): factor_seed(experiment_seed, f.name, lv)
        for f, lv in zip(factors, levels, strict=True)
    }


def check_replicates(spec: Experiment) -> None:
    """Refuse a ``replicates:`` form the engine cannot run, naming the field and the fix.

    The sweep-file parser and ``launch`` (for an Experiment built in Python) both call it.
    """
    from sweeper.errors import SpecError
    from sweeper.spec.experiment import NAME_RE, RESERVED

    def fail(field: str, message: str, fix: str) -> None:
        raise SpecError(message, source=spec.source, field=field, fix=fix)

    racing, factors = spec.racing, spec.factors
    if racing is not None:
        if racing.min < 1:
            fail(
                "replicates.min",
                f"must be at least 1, got {racing.min}",
                "write replicates: {min: 2, max: 10}",
            )
        if racing.min > racing.max:
            fail(
                "replicates",
                f"min must not exceed max, got min={racing.min}, max={racing.max}",
                f"swap them: replicates: {{min: {racing.max}, max: {racing.min}}}",
            )
        if factors:
            fail(
                "replicates",
                "racing (min/max) and seed factors cannot be combined: a race adds replicates in seed"
                " order, which would give the first factor's levels to contenders only and unbalance"
                " the crossed design the variance decomposition needs",
                "choose one: replicates: {min: 2, max: 10}, or replicates: {data: 5, init: 2}",
            )
        if spec.search.method == "nsga2":
            fail(
                "replicates",
                "racing needs one metric to pick the incumbent, and nsga2 searches several",
                "use a fixed number (replicates: 5) with nsga2, or search one metric with tpe",
            )
        if spec.compare is not None and spec.compare.arms == "pooled":
            fail(
                "compare.arms",
                "arms: pooled averages every trial of a level per seed, but racing runs the later"
                " seeds only for contenders, so the per-seed means would mix different trials",
                "use arms: best (each level's best trial, raced to max), or a fixed replicates: N",
            )
    names = {v.name for v in spec.variables} | {m.name for m in spec.metrics}
    columns: set[str] = set()
    for i, f in enumerate(factors):
        field = f"replicates.{f.name}"
        if not isinstance(f.name, str) or not NAME_RE.match(f.name):
            fail(
                field,
                f"{f.name!r} is not a usable factor name",
                "use letters, digits and _ (data, init, order)",
            )
        if f.n < 1:
            fail(field, f"needs at least 1 seed, got {f.n}", f"write replicates: {{{f.name}: 5}}")
        if any(g.name == f.name for g in factors[:i]):
            fail(field, "is given twice", "give each factor once")
        col = seed_column(f.name)
        for name, what in ((f.name, "factor"), (col, "column")):
            if name in RESERVED or name in names or name in columns:
                kind = (
                    "a trial-table column" if name in RESERVED or name in columns else "a variable or metric"
                )
                fail(
                    field,
                    f"the {what} {name!r} would clash with {kind} of the same name",
                    f"rename the factor (e.g. {f.name}_split) or the {kind}",
                )
        columns.update((f.name, col))
    want = racing.max if racing is not None else math.prod(f.n for f in factors) if factors else None
    if want is not None and spec.replicates != want:
        fail(
            "replicates",
            f"the experiment says replicates={spec.replicates}, but its form needs {want}"
            " (racing: max; factors: the product of their seeds)",
            f"build it with replicates={want}",
        )


CONFIRM_KEY = 0xC0F1  # spawn-key prefix of the confirmation stage's seeds


def confirm_seeds(experiment_seed: int, replicates: int) -> list[int]:
    """Fresh seeds for the confirmation stage: another spawn key of the experiment seed, so they are
    independent of (and, but for a 2**-32 chance per pair, distinct from) every search seed."""
    return [
        int(
            np.random.SeedSequence(experiment_seed, spawn_key=(CONFIRM_KEY, r)).generate_state(1, np.uint32)[
                0
            ]
        )
        for r in range(replicates)
    ]
