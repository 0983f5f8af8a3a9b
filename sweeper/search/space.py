"""The variable space: sampling through an Optuna trial, and enumeration for grid search.

Variables are taken in declaration order; a conditional one is sampled only when the variables it
depends on (always declared earlier) hold one of its ``when`` values. Inactive variables are left out
of the trial's params, so the objective's defaults apply and the table column stays null.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from sweeper.spec.experiment import Variable


def suggest(trial: optuna.Trial, variables: Sequence[Variable]) -> dict[str, Any]:
    """Sample one variable set through ``trial`` (define-by-run, so conditionals just work)."""
    params: dict[str, Any] = {}
    for v in variables:
        if not v.active(params):
            continue
        if v.kind == "const":
            params[v.name] = v.value
        elif v.kind == "choice":
            params[v.name] = trial.suggest_categorical(v.name, v.choices)
        elif v.kind == "int":
            params[v.name] = trial.suggest_int(
                v.name,
                int(v.low),  # type: ignore[arg-type]
                int(v.high),  # type: ignore[arg-type]
                step=int(v.step or 1),
                log=v.log,
            )
        else:
            params[v.name] = trial.suggest_float(
                v.name,
                float(v.low),  # type: ignore[arg-type]
                float(v.high),  # type: ignore[arg-type]
                step=v.step,
                log=v.log,
            )
    return params


def distributions(variables: Sequence[Variable], params: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions of the sampled (non-constant) params, to rebuild or enqueue trials."""
    import optuna.distributions as d

    out: dict[str, Any] = {}
    for v in variables:
        if v.name not in params or v.kind == "const":
            continue
        if v.kind == "choice":
            out[v.name] = d.CategoricalDistribution(v.choices)
        elif v.kind == "int":
            out[v.name] = d.IntDistribution(int(v.low), int(v.high), step=int(v.step or 1), log=v.log)  # type: ignore[arg-type]
        else:
            out[v.name] = d.FloatDistribution(float(v.low), float(v.high), step=v.step, log=v.log)  # type: ignore[arg-type]
    return out


def level_count(v: Variable) -> int:
    """How many values a variable takes in a grid (floats need a step; the spec enforces it)."""
    if v.kind == "const":
        return 1
    if v.kind == "choice":
        return len(v.choices)
    return round((v.high - v.low) / (v.step or 1) + 1e-9) + 1  # type: ignore[operator]


def level(v: Variable, i: int) -> Any:
    """The ``i``-th grid value of a variable, by arithmetic (a range is never listed)."""
    if v.kind == "const":
        return v.value
    if v.kind == "choice":
        return v.choices[i]
    x = v.low + i * (v.step or 1)  # type: ignore[operator]
    return int(x) if v.kind == "int" else round(float(x), 12)


class Grid:
    """The grid as a numbered sequence: its size and its ``k``-th point, in time and memory that
    depend on the sweep file, never on the number of points.

    Points are numbered in the depth-first order of declaration (the last variable changes fastest;
    a conditional variable branches only where active). A variable that some ``when`` refers to
    splits its levels into runs that make the same later variables active (its "signature"); the
    count below a variable is computed once per signature, so a conditional grid of 10^11 points is
    counted, and unranked, by arithmetic.
    """

    def __init__(self, variables: Sequence[Variable]):
        self.variables = tuple(variables)
        # every (name, allowed) clause of every when, numbered; a value's signature is the set of
        # clause numbers it satisfies
        self._clauses: dict[str, list[tuple[int, tuple[Any, ...]]]] = {}
        self._needs: list[tuple[tuple[str, int], ...]] = []
        n = 0
        for v in self.variables:
            needs = []
            for name, allowed in v.when:
                self._clauses.setdefault(name, []).append((n, allowed))
                needs.append((name, n))
                n += 1
            self._needs.append(tuple(needs))
        self._slot = {name: i for i, name in enumerate(self._clauses)}  # state tuple position
        self._segments: dict[str, list[tuple[int, int, frozenset[int]]]] = {
            v.name: self._split(v) for v in self.variables if v.name in self._clauses
        }
        self._memo: dict[tuple[int, tuple[frozenset[int] | None, ...]], int] = {}
        self.size = self._count(0, (None,) * len(self._slot))

    def _signature(self, name: str, value: Any) -> frozenset[int]:
        return frozenset(j for j, allowed in self._clauses[name] if value in allowed)

    def _split(self, v: Variable) -> list[tuple[int, int, frozenset[int]]]:
        """The variable's levels as runs (start, length, signature), in level order."""
        n = level_count(v)
        if v.kind in ("const", "choice"):
            every = {i: self._signature(v.name, level(v, i)) for i in range(n)}
            special = [i for i in range(n) if i == 0 or every[i] != every[i - 1]]
        else:  # a range: only the levels some clause names differ from the rest
            step = v.step or 1
            found: set[int] = set()
            for _, allowed in self._clauses[v.name]:
                for value in allowed:
                    if isinstance(value, int | float):  # bools too: True == 1 for `when`
                        i = round((value - v.low) / step)  # type: ignore[operator]
                        if 0 <= i < n and level(v, i) == value:
                            found.update((i, i + 1))
            special = sorted({0, *(i for i in found if i < n)})
            every = {i: self._signature(v.name, level(v, i)) for i in special}
        ends = [*special[1:], n]
        return [(start, end - start, every[start]) for start, end in zip(special, ends, strict=True)]

    def _active(self, i: int, state: tuple[frozenset[int] | None, ...]) -> bool:
        for name, clause in self._needs[i]:
            sig = state[self._slot[name]]
            if sig is None or clause not in sig:
                return False
        return True

    def _count(self, i: int, state: tuple[frozenset[int] | None, ...]) -> int:
        """Points of variables i.. given the signatures of the earlier referenced variables."""
        if i == len(self.variables):
            return 1
        key = (i, state)
        if key in self._memo:
            return self._memo[key]
        v = self.variables[i]
        if not self._active(i, state):
            total = self._count(i + 1, state)
        elif v.name not in self._slot:
            total = level_count(v) * self._count(i + 1, state)
        else:
            total = sum(
                length * self._count(i + 1, self._with(state, v.name, sig))
                for _, length, sig in self._segments[v.name]
            )
        self._memo[key] = total
        return total

    def _with(
        self, state: tuple[frozenset[int] | None, ...], name: str, sig: frozenset[int]
    ) -> tuple[frozenset[int] | None, ...]:
        slot = self._slot[name]
        return (*state[:slot], sig, *state[slot + 1 :])

    def point(self, k: int) -> dict[str, Any]:
        """The ``k``-th point (0 <= k < size); inactive conditionals are left out."""
        if not 0 <= k < self.size:
            raise IndexError(f"grid point {k} is outside the grid of {self.size} points")
        state: tuple[frozenset[int] | None, ...] = (None,) * len(self._slot)
        params: dict[str, Any] = {}
        for i, v in enumerate(self.variables):
            if not self._active(i, state):
                continue
            if v.name not in self._slot:
                below = self._count(i + 1, state)
                params[v.name] = level(v, k // below)
                k %= below
                continue
            for start, length, sig in self._segments[v.name]:
                after = self._with(state, v.name, sig)
                below = self._count(i + 1, after)
                if k < length * below:
                    params[v.name] = level(v, start + k // below)
                    k %= below
                    state = after
                    break
                k -= length * below
        return params


class Shuffle:
    """A seeded bijection on [0, n) (brute force's order): a Feistel network on the smallest even
    power of two that holds n, walked until it lands inside (fewer than 4 steps on average), so
    the first m trials are a uniform-looking subset without listing the n points."""

    ROUNDS = 6

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed
        bits = max(2, (n - 1).bit_length())
        self.half = (bits + 1) // 2
        self.mask = (1 << self.half) - 1
        self.nbytes = (self.half + 7) // 8

    def _f(self, r: int, x: int) -> int:
        digest = hashlib.shake_256(f"{self.seed}:{r}:{x}".encode()).digest(self.nbytes)
        return int.from_bytes(digest, "little") & self.mask

    def __call__(self, k: int) -> int:
        if not 0 <= k < self.n:
            raise IndexError(f"{k} is outside [0, {self.n})")
        x = k
        while True:
            left, right = x >> self.half, x & self.mask
            for r in range(self.ROUNDS):
                left, right = right, left ^ self._f(r, right)
            x = (left << self.half) | right
            if x < self.n:
                return x


def grid(variables: Sequence[Variable]) -> Iterator[dict[str, Any]]:
    """Every point in grid order (for small grids and tests; sweeps address points by number)."""
    g = Grid(variables)
    return (g.point(k) for k in range(g.size))


def grid_size(variables: Sequence[Variable]) -> int:
    """Number of grid points, counted by arithmetic."""
    return Grid(variables).size
