"""The racing rule on hand-made tables: who stops, who grows, and the incumbent's evidence."""

from __future__ import annotations

import dataclasses
import itertools
import random

import pytest

from sweeper.errors import SpecError
from sweeper.search.racing import Race, clearly_worse
from sweeper.search.seeds import (
    check_replicates,
    factor_levels,
    factor_seeds,
    replicate_seeds,
)
from sweeper.spec.experiment import Compare, Racing, SeedFactor
from sweeper.spec.model import load_spec

SEED_NOISE = [0.3, -0.2, 0.5, 0.0, -0.4, 0.1, 0.25, -0.1, 0.35, -0.3]  # replicate r's shared noise


def play(race: Race, values: dict[int, list[float]]) -> dict[int, int]:
    """Run a race to its end on a table {trial: value of each replicate}; returns replicates run."""
    ran: dict[int, int] = {}
    for k in sorted(values):
        ran[k] = race.add(k)
    done: set[int] = set()
    while len(done) < len(values):
        for k, n in ran.items():
            for r in range(n):
                race.land(k, r, values[k][r])
        grew, ended = race.advance()
        if not grew and not ended:
            raise AssertionError("the race stalled")
        ran.update(grew)
        done.update(ended)
    return ran


def test_a_clearly_worse_trial_stops_at_min() -> None:
    incumbent = [1.0 + e for e in SEED_NOISE]
    worse = [0.2 + e + 0.01 * (r % 2) for r, e in enumerate(SEED_NOISE)]  # far below, same seed noise
    race = Race(2, 10, "maximize")
    ran = play(race, {0: incumbent, 1: worse})
    assert ran == {0: 10, 1: 2}
    assert race.incumbent() == 0


def test_a_tie_with_the_incumbent_grows_to_max() -> None:
    incumbent = [1.0 + e for e in SEED_NOISE]
    tie = [1.0 + e + (0.05 if r % 2 else -0.05) for r, e in enumerate(SEED_NOISE)]
    race = Race(2, 10, "maximize")
    ran = play(race, {0: incumbent, 1: tie})
    assert ran == {0: 10, 1: 10}


def test_a_better_challenger_races_to_max_and_becomes_incumbent() -> None:
    first = [1.0 + e for e in SEED_NOISE]
    worse = [1.5 + e + 0.01 * r for r, e in enumerate(SEED_NOISE)]
    best = [0.0 + e + 0.01 * r for r, e in enumerate(SEED_NOISE)]
    race = Race(2, 10, "minimize")  # minimizing: the lower one is better
    ran = play(race, {0: first, 1: worse, 2: best, 3: first})
    assert race.incumbent() == 2
    assert ran == {0: 10, 1: 2, 2: 10, 3: 2}  # 3 ties the old incumbent, but the new one beats it


def test_the_incumbent_never_has_fewer_replicates_than_a_challenger() -> None:
    rng = random.Random(3)
    for case in range(30):
        means = [rng.gauss(0, 1) for _ in range(12)]
        table = {k: [m + SEED_NOISE[r] + rng.gauss(0, 0.5) for r in range(10)] for k, m in enumerate(means)}
        race = Race(2, 10, "maximize")
        targets = {k: race.add(k) for k in table}
        finished: set[int] = set()
        pending = {k: list(range(targets[k])) for k in table}
        while len(finished) < len(table):
            # land replicates in a random order, one at a time, checking the rule after each step
            k = rng.choice([t for t in pending if pending[t]] or [None])  # type: ignore[list-item]
            if k is not None:
                r = pending[k].pop(rng.randrange(len(pending[k])))
                race.land(k, r, table[k][r])
            grew, ended = race.advance()
            for t, n in grew:
                pending[t].extend(range(targets[t], n))
                targets[t] = n
            finished.update(ended)
            inc = race.incumbent()
            assert inc is not None
            assert all(targets[inc] >= n for n in targets.values()), case
        assert all(n in (2, 4, 8, 10) for n in targets.values())


def test_decisions_do_not_depend_on_the_order_runs_land() -> None:
    rng = random.Random(5)
    table = {k: [rng.gauss(k % 3, 1) + SEED_NOISE[r] for r in range(10)] for k in range(15)}
    first = play(Race(2, 10, "maximize"), table)
    for order in range(5):
        race = Race(2, 10, "maximize")
        targets = {k: race.add(k) for k in table}
        todo = [(k, r) for k in table for r in range(targets[k])]
        random.Random(order).shuffle(todo)
        while todo:
            k, r = todo.pop()
            race.land(k, r, table[k][r])
            grew, _ = race.advance()
            for t, n in grew:
                todo.extend((t, q) for q in range(targets[t], n))
                targets[t] = n
            random.Random(order + len(todo)).shuffle(todo)
        assert targets == first


def test_groups_race_separately_and_a_gap_waits() -> None:
    race = Race(2, 4, "maximize")
    assert race.add(0, "a") == 4
    assert race.add(2, "b") == 2  # trial 1 is missing (a resumed table): b's first is not known yet
    assert race.add(1, "b") == 4  # 1 is b's first trial: its incumbent
    assert race.target(2) == 2
    for r in range(4):
        race.land(1, r, 1.0 + SEED_NOISE[r])
        race.land(0, r, 0.0)
    race.land(2, 0, 5.0 + SEED_NOISE[0])
    race.land(2, 1, 5.0 + SEED_NOISE[1])
    grew, ended = race.advance()
    assert grew == [(2, 4)] and ended == [0, 1]
    assert race.incumbent("a") == 0 and race.incumbent("b") == 1


def test_failed_and_pruned_replicates() -> None:
    race = Race(2, 4, "maximize")
    race.add(0)
    race.add(1)
    race.add(2)
    for r in range(4):
        race.land(0, r, 1.0 + SEED_NOISE[r])
    race.land(1, 0, None, "failed")
    race.land(1, 1, float("nan"))
    race.land(2, 0, 3.0, "pruned")
    race.land(2, 1, 3.0)
    grew, ended = race.advance()
    assert grew == [] and ended == [0, 1, 2]  # no value: stops; pruned: stops


def test_clearly_worse_is_a_one_sided_paired_t_test() -> None:
    from scipy import stats

    inc = [1.0, 1.2, 0.9, 1.1]
    ch = [0.7, 1.0, 0.8, 0.8]
    p = stats.ttest_rel(inc, ch, alternative="greater").pvalue
    assert p < 0.05 and clearly_worse(ch, inc, "maximize")
    assert not clearly_worse(inc, ch, "maximize")
    assert clearly_worse(inc, ch, "minimize")
    assert not clearly_worse([1.0], [2.0], "maximize")  # one pair tells nothing
    assert clearly_worse([1.0, 2.0], [1.5, 2.5], "maximize")  # identical differences
    assert not clearly_worse([1.0, 2.0], [1.0, 2.0], "maximize")


def test_factor_seeds_are_a_full_factorial_of_independent_streams() -> None:
    factors = (SeedFactor("data", 3), SeedFactor("init", 2))
    cells = [factor_levels(factors, r) for r in range(6)]
    assert cells == list(itertools.product(range(3), range(2)))
    seeds = [factor_seeds(7, factors, r) for r in range(6)]
    assert {s["data_seed"] for s in seeds} == {factor_seeds(7, factors[:1], r)["data_seed"] for r in range(3)}
    assert len({s["data_seed"] for s in seeds}) == 3 and len({s["init_seed"] for s in seeds}) == 2
    assert seeds[0]["data_seed"] == factor_seeds(7, (SeedFactor("data", 5),), 0)["data_seed"]  # named stream
    assert not {s["data_seed"] for s in seeds} & set(replicate_seeds(7, 6))
    assert factor_seeds(7, (), 0) == {}


SPEC = """
experiment: forms
objective: objectives:quadratic
metrics: [loss: minimize]
variables:
  x: {float: [-1.0, 1.0]}
  kind: {choice: [a, b]}
search: {method: random, trials: 4}
replicates: 10
"""


@pytest.fixture
def base(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "forms.yaml"
    path.write_text(SPEC)
    return load_spec(path)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (dict(racing=Racing(5, 2)), "replicates", "min must not exceed max"),
        (dict(racing=Racing(0, 10)), "replicates.min", "at least 1"),
        (dict(factors=(SeedFactor("data", 0),), replicates=0), "replicates.data", "at least 1 seed"),
        (dict(factors=(SeedFactor("x", 2), SeedFactor("i", 5))), "replicates.x", "variable or metric"),
        (dict(factors=(SeedFactor("data", 5), SeedFactor("node", 2))), "replicates.node", "column"),
        (dict(factors=(SeedFactor("lo", 5), SeedFactor("lo", 2))), "replicates.lo", "twice"),
        (dict(factors=(SeedFactor("data-split", 10),)), "replicates.data-split", "factor name"),
        (dict(racing=Racing(2, 10), factors=(SeedFactor("data", 10),)), "replicates", "cannot be combined"),
        (dict(factors=(SeedFactor("data", 5),)), "replicates", "needs 5"),
    ],
)
def test_bad_forms_are_refused_with_file_field_and_fix(base, changes, field, words) -> None:  # type: ignore[no-untyped-def]
    spec = dataclasses.replace(base, **changes)
    with pytest.raises(SpecError) as err:
        check_replicates(spec)
    assert err.value.source.endswith("forms.yaml") and err.value.field == field
    assert words in err.value.problem and err.value.fix


def test_a_factor_column_clashing_with_a_variable_is_refused(base) -> None:  # type: ignore[no-untyped-def]
    from sweeper.spec.experiment import Variable

    spec = dataclasses.replace(
        base,
        variables=(*base.variables, Variable("data_seed", "int", low=0, high=3)),
        factors=(SeedFactor("data", 10),),
    )
    with pytest.raises(SpecError, match="'data_seed' would clash"):
        check_replicates(spec)


def test_racing_refuses_pooled_arms_and_nsga2(base) -> None:  # type: ignore[no-untyped-def]
    pooled = Compare("kind", "b", "a", "loss", arms="pooled")
    with pytest.raises(SpecError, match="pooled"):
        check_replicates(dataclasses.replace(base, racing=Racing(2, 10), compare=pooled))
    nsga = dataclasses.replace(base.search, method="nsga2")
    with pytest.raises(SpecError, match="nsga2"):
        check_replicates(dataclasses.replace(base, racing=Racing(2, 10), search=nsga))
    check_replicates(dataclasses.replace(base, racing=Racing(2, 10)))
    check_replicates(dataclasses.replace(base, factors=(SeedFactor("data", 5), SeedFactor("init", 2))))
