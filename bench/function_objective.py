"""What giving the objective as a Python function costs against naming it ``module:function``.

The same zero-cost quadratic runs N times on an embedded Ray (random search, 2 CPUs), once named
``objectives:quadratic`` (workers import it) and once as this script's own function (``__main__``,
pickled by value with Ray's cloudpickle, its bytes travelling with every task, unpickled once per
worker process). Each mode runs in its own fresh process. Prints runs/s from the first run's start
to the last run's end, the pickle's size, and the ratio function / named (1.0: no cost).

    python bench/function_objective.py [--n 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def quadratic(x: float, y: float, z: float) -> float:
    return (x - 0.5) ** 2 + (y + 0.25) ** 2 + z**2


def _child(mode: str, n: int, results: str) -> None:
    import sweeper
    from sweeper.run.objective import pickled

    sys.path.insert(0, str(HERE))
    objective = quadratic if mode == "function" else "objectives:quadratic"
    spec = {
        "experiment": f"fn-{mode}",
        "objective": objective,
        "metrics": [{"loss": "minimize"}],
        "variables": {v: {"float": [-1.0, 1.0]} for v in ("x", "y", "z")},
        "search": {"method": "random", "trials": n, "seed": 0},
    }
    table = sweeper.launch(sweeper.load_spec(spec, root=HERE), results=results, progress=False).table
    span = (table["ended_at"].max() - table["started_at"].min()).total_seconds()
    size = len(pickled("__main__:quadratic", quadratic)) if mode == "function" else 0
    print(json.dumps({"runs": len(table), "rate": len(table) / span, "pickle_bytes": size}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="runs per mode")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--results", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child, args.n, args.results)
        return
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("named", "function"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--n", str(args.n), "--results", tmp],
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(out.stdout.strip().splitlines()[-1])
            rates[mode] = got["rate"]
            extra = f", pickle {got['pickle_bytes']} bytes" if mode == "function" else ""
            print(f"{mode:>8}: {got['runs']} runs, {got['rate']:.1f} runs/s{extra}")
    print(f"function / named: {rates['function'] / rates['named']:.3f}")


if __name__ == "__main__":
    main()
