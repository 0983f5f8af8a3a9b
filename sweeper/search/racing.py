"""Adaptive replicates (``replicates: {min: 2, max: 10}``): race each trial's seeds against the incumbent.

The rule, SMAC's intensification made deterministic:

- Trials race in groups (one group, or one per level of the hypothesis' compared variable and its
  ``within`` blocks, so each arm's best holds the evidence the verdict compares). The first trial of
  a group is its incumbent and runs ``max`` replicates at once, so the incumbent always holds at least
  as many replicates as any challenger.
- Every other trial starts with ``min`` replicates. When replicates ``0..n-1`` of a challenger and of
  the incumbent have landed, they are compared on the seeds both completed (replicate r has the same
  seed in every trial): a one-sided paired t-test at level ``ALPHA`` whose variance pools the spread
  of the group's earlier, finished comparisons with this one's (the seeds' noise is much the same for
  every trial, and two seeds alone give one degree of freedom). If the incumbent is better at that
  level, the challenger is *clearly worse* and stops at n. Otherwise it is plausibly best and grows
  to ``min(2n, max)`` replicates, in seed order (SMAC doubles, so a contender needs few rounds).
- A challenger that reaches ``max`` without being clearly worse becomes the incumbent when its mean
  over the ``max`` shared seeds is better.
- A group decides its trials in trial-id order: trial k is judged against the incumbent left by the
  trials before it. So every decision is a function of the values in the trial table alone, never of
  the order runs finished in: a killed driver replays the table and resumes the race exactly.

A trial's race ends when it stops, reaches ``max``, is pruned or has no complete replicate; only
then is it told to the search (nothing is added to a trial after that, since only incumbents grow
and they start at ``max``).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.spec.experiment import Experiment

ALPHA = 0.05  # level of the one-sided paired test that stops a clearly worse challenger


def spread(challenger: Sequence[float], incumbent: Sequence[float]) -> tuple[float, int]:
    """(sum of squared deviations, degrees of freedom) of the paired differences."""
    n = len(challenger)
    if n != len(incumbent):
        raise ValueError(f"paired values must have one length, got {n} and {len(incumbent)}")
    d = [i - c for c, i in zip(challenger, incumbent, strict=True)]
    mean = math.fsum(d) / n if n else 0.0
    return math.fsum((x - mean) ** 2 for x in d), max(n - 1, 0)


def clearly_worse(
    challenger: Sequence[float],
    incumbent: Sequence[float],
    direction: str,
    pooled: tuple[float, int] = (0.0, 0),
) -> bool:
    """Whether the incumbent beats the challenger at level ALPHA on their paired (same-seed) values.

    A one-sided paired t-test of d = incumbent - challenger (challenger - incumbent when
    minimizing) > 0. Its variance pools this pair's spread with ``pooled`` = (sum of squares, degrees
    of freedom) of the race's earlier comparisons: the spread of a paired difference is the seeds'
    noise, much the same for every trial, and two seeds alone estimate it with one degree of freedom
    (a t quantile of 6.3), which would let no trial stop at ``min``. With fewer than two pairs
    nothing is clear; without any spread at all the sign decides.
    """
    n = len(challenger)
    ss, df = spread(challenger, incumbent)
    if n < 2:
        return False
    sign = 1.0 if direction == "maximize" else -1.0
    mean = sign * math.fsum(i - c for c, i in zip(challenger, incumbent, strict=True)) / n
    ss, df = ss + pooled[0], df + pooled[1]
    var = ss / df
    if var <= 1e-24 * max(1.0, mean * mean):
        return mean > 0
    from scipy.special import stdtrit  # the t quantile, without importing all of scipy.stats

    t = mean / math.sqrt(var / n)
    return bool(t > stdtrit(df, 1 - ALPHA))


def better(a: float, b: float, direction: str) -> bool:
    return a > b if direction == "maximize" else a < b


def grown(n: int, most: int) -> int:
    """The next replicate count of a plausibly best challenger."""
    return min(2 * n, most)


@dataclass(slots=True)
class _Entry:
    group: Hashable
    target: int  # replicates 0..target-1 are (to be) run
    values: dict[int, float | None] = field(default_factory=dict)  # replicate -> value; None: no value
    pruned: bool = False
    ended: bool = False


class Race:
    """The race's state, fed with trials as they are asked and values as they land.

    ``add`` says how many replicates a new trial starts with; ``land`` records one replicate; ``advance``
    makes every decision the landed values allow and returns what changed: trials that grow (trial,
    new target) and trials whose race ended, both in trial order.
    """

    def __init__(self, least: int, most: int, direction: str):
        if not 1 <= least <= most:
            raise ValueError(f"racing needs 1 <= min <= max, got min={least}, max={most}")
        self.least, self.most, self.direction = least, most, direction
        self._trials: dict[int, _Entry] = {}
        self._incumbent: dict[Hashable, int] = {}
        self._queue: dict[Hashable, list[int]] = {}  # undecided challengers per group, in id order
        self._crowned: set[int] = set()  # incumbents, past and present, whose race has not ended
        self._pool: dict[Hashable, tuple[float, int]] = {}  # spread of the group's ended comparisons
        self._low = 0  # every trial id below this has been added

    def add(self, trial: int, group: Hashable = ()) -> int:
        """Enter a trial; returns the replicates it starts with (max for a group's first trial)."""
        if trial in self._trials:
            raise ValueError(f"trial {trial} is already in the race")
        self._trials[trial] = _Entry(group, self.least)
        queue = self._queue.setdefault(group, [])
        queue.append(trial)
        queue.sort()
        while self._low in self._trials:
            self._low += 1
        self._crown(group)
        return self._trials[trial].target

    def _crown(self, group: Hashable) -> int | None:
        """A group's first trial becomes its incumbent, with max replicates, once no lower id can
        still arrive (a resumed table may have gaps the search fills first). Returns it, if new."""
        queue = self._queue[group]
        if group in self._incumbent or not queue or queue[0] >= self._low:
            return None
        first = queue.pop(0)
        self._incumbent[group] = first
        self._crowned.add(first)
        self._trials[first].target = self.most
        return first

    def land(self, trial: int, replicate: int, value: float | None, status: str = "complete") -> None:
        """One replicate finished: its primary value (None or non-finite: no value), and status."""
        entry = self._trials[trial]
        ok = status == "complete" and value is not None and math.isfinite(value)
        entry.values[replicate] = value if ok else None
        entry.pruned = entry.pruned or status == "pruned"

    def target(self, trial: int) -> int:
        return self._trials[trial].target

    def ended(self, trial: int) -> bool:
        return self._trials[trial].ended

    def incumbent(self, group: Hashable = ()) -> int | None:
        return self._incumbent.get(group)

    def advance(self) -> tuple[list[tuple[int, int]], list[int]]:
        grew: dict[int, int] = {}
        ended: list[int] = []
        for group, queue in self._queue.items():
            crowned = self._crown(group)
            if crowned is not None:
                grew[crowned] = self.most
            if group not in self._incumbent:
                continue
            while queue and queue[0] < self._low:  # no lower id of this group can still arrive
                k = queue[0]
                decision = self._decide(k, self._incumbent[group])
                if decision is None:
                    break
                if decision > 0:
                    self._trials[k].target = grew[k] = decision
                    continue
                queue.pop(0)
                self._end(k, ended)
        for king in sorted(self._crowned):
            if self._landed(king, self.most):
                self._crowned.discard(king)
                self._end(king, ended)
        return sorted(grew.items()), sorted(ended)

    def _end(self, trial: int, ended: list[int]) -> None:
        if not self._trials[trial].ended:
            self._trials[trial].ended = True
            ended.append(trial)

    def _decide(self, k: int, inc: int) -> int | None:
        """None: wait for values; 0: the race of k ended (incumbent updated); n > 0: grow k to n."""
        entry, champion = self._trials[k], self._trials[inc]
        n = entry.target
        if not self._landed(k, n):
            return None
        mine = [entry.values[r] for r in range(n)]
        if entry.pruned or all(v is None for v in mine):
            return 0
        if not self._landed(inc, n):
            return None
        # A pruned or failed incumbent sets no bar: its challengers race to max and replace it.
        weak = champion.pruned or all(champion.values[r] is None for r in range(n))
        theirs = [None if weak else champion.values[r] for r in range(n)]
        shared = [(c, i) for c, i in zip(mine, theirs, strict=True) if c is not None and i is not None]
        ch, ic = [c for c, _ in shared], [i for _, i in shared]
        pool = self._pool.get(entry.group, (0.0, 0))
        worse = clearly_worse(ch, ic, self.direction, pool)
        if not worse and n < self.most:
            return grown(n, self.most)
        ss, df = spread(ch, ic)
        self._pool[entry.group] = (pool[0] + ss, pool[1] + df)  # this comparison is final now
        if worse:
            return 0
        if weak or (
            shared and better(_mean([c for c, _ in shared]), _mean([i for _, i in shared]), self.direction)
        ):
            self._incumbent[entry.group] = k  # k has all max replicates: its race ends now
        return 0

    def _landed(self, trial: int, n: int) -> bool:
        values = self._trials[trial].values
        return all(r in values for r in range(n))


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def new_race(spec: Experiment) -> Race | None:
    """The race of an experiment with ``replicates: {min, max}``; None for fixed replicates."""
    if spec.racing is None:
        return None
    return Race(spec.racing.min, spec.racing.max, spec.primary.direction)


def race_group(spec: Experiment, params: Mapping[str, Any]) -> tuple[Any, ...]:
    """Which race a trial runs in: one per setting of the compared variable and its ``within`` blocks
    (the verdict compares each level's best trial, so each level keeps its own incumbent)."""
    compare = spec.compare
    if compare is None:
        return ()
    return tuple(str(params.get(name)) for name in (compare.variable, *compare.within))


def replay(
    spec: Experiment, trials: Iterable[tuple[int, Mapping[str, Any], Mapping[int, tuple[float | None, str]]]]
) -> Race | None:
    """The race a trial table leaves: (trial, params, {replicate: (primary value, status)}) in any
    order. Decisions depend on the values only, so this is the state the driver that wrote them had."""
    race = new_race(spec)
    if race is None:
        return None
    for k, params, reps in sorted(trials, key=lambda t: t[0]):
        race.add(k, race_group(spec, params))
        for r, (value, status) in sorted(reps.items()):
            race.land(k, r, value, status)
    race.advance()
    return race
