"""What racing saves: fixed ``replicates: 10`` against ``{min: 2, max: 10}`` on the same search.

Each seeded synthetic sweep has a known truth: 40 configurations (``model`` a or b, ``cfg`` 0..19,
a grid, so both modes search exactly the same trials); 36 are poor (2 to 5 noise units below the
best), model b holds the true best and a good one 1.5 units below it, model a a good one 1 unit
below. A replicate's value is the configuration's mean plus noise shared by the seed (1 unit) and
noise of its own (1 unit): the gaps are comparable to the noise. The hypothesis compares model b with
model a (each level's best trial, paired by seed).

Prints, over the sweeps: runs spent, how often the reported best is the true best, and how often the
racing verdict (and best) agrees with the fixed-10 one. Target: the same best and verdict in >= 95 %
of sweeps at <= 50 % of the runs.

    python bench/racing.py [--sweeps 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CONFIGS = 20  # per model
GOOD = {("b", "best"): 0.0, ("b", "good"): -1.5, ("a", "good"): -1.0}


def truth(sweep: int) -> dict[tuple[str, int], float]:
    """The true mean of every configuration of sweep ``sweep`` (higher is better)."""
    import numpy as np

    rng = np.random.default_rng([sweep, 1])
    means = {(m, c): -float(rng.uniform(2.0, 5.0)) for m in ("a", "b") for c in range(CONFIGS)}
    b = rng.permutation(CONFIGS)
    a = int(rng.integers(CONFIGS))
    means[("b", int(b[0]))], means[("b", int(b[1]))] = GOOD[("b", "best")], GOOD[("b", "good")]
    means[("a", a)] = GOOD[("a", "good")]
    return means


def objective(model: str, cfg: int, sweep: int, seed: int) -> float:
    """A replicate of a synthetic configuration: its true mean plus seed-shared and own noise."""
    import numpy as np

    shared = np.random.default_rng([sweep, 2, seed]).normal()
    own = np.random.default_rng([sweep, 3, seed, cfg, ord(model)]).normal()
    return truth(sweep)[(model, cfg)] + float(shared) + float(own)


def spec(sweep: int, racing: bool) -> Any:
    from sweeper.spec.experiment import Racing
    from sweeper.spec.model import load_spec

    base = load_spec(
        {
            "experiment": f"bench-{sweep}-{'race' if racing else 'fixed'}",
            "objective": "racing:objective",
            "metrics": [{"score": "maximize"}],
            "variables": {
                "model": {"choice": ["a", "b"]},
                "cfg": {"int": [0, CONFIGS - 1]},
                "sweep": sweep,
            },
            "search": {"method": "grid", "seed": sweep},
            "replicates": 10,
            "compare": {"variable": "model", "treatment": "b", "baseline": "a", "metric": "score"},
        },
        root=HERE,
    )
    return dataclasses.replace(base, racing=Racing(2, 10)) if racing else base


def one(sweep: int, racing: bool, results: Path) -> tuple[int, tuple[str, int], bool | None]:
    """(runs, reported best (model, cfg), verdict supported) of one sweep."""
    import sweeper
    from sweeper.analysis import hypothesis_verdict

    result = sweeper.launch(spec(sweep, racing), results=results, backend="local")
    table = result.table
    best = result.best
    assert best is not None
    verdict = hypothesis_verdict(table, result.spec)
    return (
        len(table),
        (best["params"]["model"], int(best["params"]["cfg"])),
        (verdict.supported if verdict is not None else None),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=100)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    rows = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-racing-") as tmp:
        for sweep in range(args.sweeps):
            means = truth(sweep)
            true_best = max(means, key=lambda k: means[k])
            fixed = one(sweep, False, Path(tmp))
            race = one(sweep, True, Path(tmp))
            rows.append((fixed, race, true_best))
    n = len(rows)
    runs_fixed = sum(f[0] for f, _, _ in rows)
    runs_race = sum(r[0] for _, r, _ in rows)
    best_fixed = sum(f[1] == t for f, _, t in rows)
    best_race = sum(r[1] == t for _, r, t in rows)
    same_best = sum(f[1] == r[1] for f, r, _ in rows)
    same_verdict = sum(f[2] == r[2] for f, r, _ in rows)
    both = sum(f[1] == r[1] and f[2] == r[2] for f, r, _ in rows)
    supported = sum(bool(f[2]) for f, _, _ in rows)

    def pct(k: int) -> str:
        return f"{100 * k / n:.0f} %"

    print(f"{n} seeded sweeps of 40 configurations (grid), {time.time() - started:.0f} s")
    print("| replicates | runs spent | runs / fixed | true best found | same best as fixed | same verdict |")
    print("|---|---|---|---|---|---|")
    print(f"| fixed 10 | {runs_fixed:,} | 1.00 | {pct(best_fixed)} | - | - |")
    print(
        f"| min 2, max 10 | {runs_race:,} | {runs_race / runs_fixed:.2f} | {pct(best_race)} |"
        f" {pct(same_best)} | {pct(same_verdict)} |"
    )
    ok = both / n >= 0.95 and runs_race <= 0.5 * runs_fixed
    print(
        f"same best and verdict: {pct(both)} of sweeps (fixed-10 verdict supported in {pct(supported)});"
        f" target >= 95 % at <= 50 % of the runs: {'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
