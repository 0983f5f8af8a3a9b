"""Random and QMC points without an Optuna trial per ask: the fast path for non-adaptive search.

Random and QMC sampling ignore past results, so a study adds nothing but cost (Optuna's ask + tell
is ~140 µs a trial, the whole budget of a zero-cost trial). Here trial k's variables come from row k
of a counter-addressed stream of uniforms (seed, k) — a PCG64 stream advanced to ``k * d`` for
random, point k of a scrambled Sobol sequence for QMC — mapped to each variable's range in numpy,
a block of trials at a time. So trial k is the same whatever order trials are asked in, and a
resumed sweep samples exactly what an uninterrupted one would have.

Every variable owns one coordinate whether or not it is active, so conditionals do not shift the
others. Mapping (as Optuna's samplers do): floats uniform (log-uniform with ``log``), ranges with a
step or ints pick one of their levels uniformly (ints with ``log`` log-uniformly, then round),
choices pick an index uniformly.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from sweeper.spec.experiment import Variable

FAST_METHODS = frozenset({"random", "qmc"})
BLOCK = 256  # trials sampled at once


class PointStream:
    """Trial k's variable set for a random or QMC search, addressed by k."""

    def __init__(self, variables: Sequence[Variable], method: str, seed: int):
        if method not in FAST_METHODS:
            raise ValueError(f"method {method!r} has no fast path; use one of {sorted(FAST_METHODS)}")
        self.variables = tuple(variables)
        self.method, self.seed = method, seed
        self.dim = max(1, len(self.variables))
        self._start = -1  # first trial id held in the block
        self._rows: list[dict[str, Any]] = []

    def params(self, k: int) -> dict[str, Any]:
        """The variable set of trial ``k`` (a fresh dict; inactive conditionals left out)."""
        if not self._start <= k < self._start + len(self._rows):
            self._fill(k)
        return dict(self._rows[k - self._start])

    def _fill(self, k: int) -> None:
        u = self._uniforms(k, BLOCK)
        columns = [_map(v, u[:, i]) for i, v in enumerate(self.variables)]
        names = [v.name for v in self.variables]
        conditional = any(v.when for v in self.variables)
        rows: list[dict[str, Any]] = []
        for values in zip(*columns, strict=True):
            if not conditional:
                rows.append(dict(zip(names, values, strict=True)))
                continue
            row: dict[str, Any] = {}
            for v, value in zip(self.variables, values, strict=True):
                if v.active(row):
                    row[v.name] = value
            rows.append(row)
        if not self.variables:
            rows = [{} for _ in range(BLOCK)]
        self._start, self._rows = k, rows

    def _uniforms(self, k: int, n: int) -> np.ndarray:
        import numpy as np

        if self.method == "qmc":
            from scipy.stats import qmc

            sobol = qmc.Sobol(d=self.dim, scramble=True, seed=self.seed)
            with warnings.catch_warnings():  # balance warnings for n not a power of 2: not ours to fix
                warnings.simplefilter("ignore", UserWarning)
                if k:
                    sobol.fast_forward(k)
                return np.asarray(sobol.random(n))
        bits = np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(1 << 21,)))
        bits.advance(k * self.dim)  # one 64-bit draw per double: row k starts at draw k * dim
        return np.random.Generator(bits).random((n, self.dim))


def _map(v: Variable, u: np.ndarray) -> list[Any]:
    """Uniforms in [0, 1) to values of ``v``, as plain Python values."""
    import numpy as np

    if v.kind == "const":
        return [v.value] * len(u)
    if v.kind == "choice":
        idx = np.minimum((u * len(v.choices)).astype(np.int64), len(v.choices) - 1)
        return [v.choices[i] for i in idx.tolist()]
    low, high = float(v.low), float(v.high)  # type: ignore[arg-type]
    if v.kind == "int" and v.log:
        lo, hi = math.log(low - 0.5), math.log(high + 0.5)
        x = np.clip(np.rint(np.exp(lo + u * (hi - lo))), low, high)
        return x.astype(np.int64).tolist()  # type: ignore[no-any-return]
    if v.kind == "int" or v.step is not None:
        step = float(v.step or 1)
        n = round((high - low) / step + 1e-9) + 1
        idx = np.minimum((u * n).astype(np.int64), n - 1)
        if v.kind == "int":
            return (int(low) + idx * int(step)).tolist()  # type: ignore[no-any-return]
        return np.round(low + idx * step, 12).tolist()  # type: ignore[no-any-return]
    if v.log:
        lo, hi = math.log(low), math.log(high)
        return np.clip(np.exp(lo + u * (hi - lo)), low, high).tolist()  # type: ignore[no-any-return]
    return (low + u * (high - low)).tolist()  # type: ignore[no-any-return]
