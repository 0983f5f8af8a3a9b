"""Grids counted and addressed by arithmetic: a point is computed from its number, never listed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sweeper import load_spec
from sweeper.search import space
from sweeper.search.proposers import Enumerated
from tests.conftest import sweep_spec


def _spec(variables: dict[str, Any], method: str = "grid", trials: int | None = None, seed: int = 0) -> Any:
    search: dict[str, Any] = {"method": method, "seed": seed}
    if trials is not None:
        search["trials"] = trials
    return load_spec(sweep_spec(variables=variables, search=search))


def _reference(variables: Any) -> Iterator[dict[str, Any]]:
    """The grid as plain nested loops: what Grid must number, point for point."""

    def expand(i: int, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if i == len(variables):
            yield dict(params)
            return
        v = variables[i]
        if not v.active(params):
            yield from expand(i + 1, params)
            return
        for j in range(space.level_count(v)):
            params[v.name] = space.level(v, j)
            yield from expand(i + 1, params)
            del params[v.name]

    yield from expand(0, {})


@st.composite
def conditional_spaces(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["choice", "int", "const"]))
        if kind == "choice":
            var: dict[str, Any] = {
                "choice": draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True))
            }
        elif kind == "int":
            low = draw(st.integers(0, 3))
            var = {"int": [low, low + draw(st.integers(0, 4))]}
        else:
            var = {}
        if kind == "const":
            out[f"v{i}"] = 7
            continue
        earlier = [(name, v) for name, v in out.items() if isinstance(v, dict)]
        if earlier and draw(st.booleans()):
            name, dep = draw(st.sampled_from(earlier))
            values = dep["choice"] if "choice" in dep else list(range(dep["int"][0], dep["int"][1] + 1))
            var["when"] = {name: draw(st.lists(st.sampled_from(values), min_size=1, max_size=3, unique=True))}
        out[f"v{i}"] = var
    return out


@settings(max_examples=150, deadline=None)
@given(conditional_spaces())
def test_every_point_is_the_kth_of_the_nested_loops(variables: dict[str, Any]) -> None:
    vs = _spec(variables).variables
    expected = list(_reference(vs))
    grid = space.Grid(vs)
    assert grid.size == len(expected)
    assert [grid.point(k) for k in range(grid.size)] == expected


def test_a_conditional_grid_of_2e11_points_is_counted_and_addressed() -> None:
    variables = {
        "model": {"choice": ["big", "small"]},
        "width": {"int": [1, 100_000], "when": {"model": "big"}},
        "depth": {"int": [1, 1_000_000], "when": {"model": "big"}},
        "alpha": {"int": [0, 99], "when": {"model": "small"}},
        "tag": {"choice": ["a", "b"], "when": {"width": [7, 8]}},
    }
    grid = space.Grid(_spec(variables).variables)
    big = (100_000 + 2) * 1_000_000  # width 7 and 8 branch into two tags each
    assert grid.size == big + 100
    assert grid.point(0) == {"model": "big", "width": 1, "depth": 1}
    assert grid.point(6 * 1_000_000) == {"model": "big", "width": 7, "depth": 1, "tag": "a"}
    assert grid.point(6 * 1_000_000 + 1) == {"model": "big", "width": 7, "depth": 1, "tag": "b"}
    assert grid.point(big - 1) == {"model": "big", "width": 100_000, "depth": 1_000_000}
    assert grid.point(big) == {"model": "small", "alpha": 0}
    assert grid.point(grid.size - 1) == {"model": "small", "alpha": 99}


def test_capped_grids_over_huge_ranges_take_only_their_points() -> None:
    spec = _spec({"n": {"int": [0, 10**12]}, "x": {"float": [0.0, 1.0], "step": 1e-12}}, trials=3)
    grid = space.Grid(spec.variables)
    assert grid.size == (10**12 + 1) ** 2
    proposer = Enumerated(spec)
    assert [proposer.propose(k) for k in range(3)] == [{"n": 0, "x": x} for x in (0.0, 1e-12, 2e-12)]
    assert proposer.propose(10**12 + 1) == {"n": 1, "x": 0.0}  # ids may jump (resume): no walk


def test_brute_force_takes_a_seeded_subset_of_10_to_the_12_points() -> None:
    variables = {f"v{i}": {"int": [0, 9]} for i in range(12)}
    spec = _spec(variables, method="bruteforce", trials=5, seed=3)
    first = [Enumerated(spec).propose(k) for k in range(5)]
    assert first == [Enumerated(spec).propose(k) for k in range(5)]  # same seed, same points
    assert len({tuple(p.values()) for p in first}) == 5
    other = [Enumerated(_spec(variables, method="bruteforce", trials=5, seed=4)).propose(k) for k in range(5)]
    assert other != first


@given(st.integers(1, 3000), st.integers(0, 2**40))
@settings(max_examples=60, deadline=None)
def test_the_brute_force_order_is_a_permutation(n: int, seed: int) -> None:
    shuffle = space.Shuffle(n, seed)
    assert sorted(shuffle(k) for k in range(n)) == list(range(n))
