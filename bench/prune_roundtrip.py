"""How long ``trial.should_prune()`` takes on Ray: the round trip from a worker to the driver's pruner.

A curve-reporting objective times every call; a grid of 8 learning rates x 2 replicates runs on an
embedded Ray with Optuna's median pruner, so most trials are asked at every step and the bad ones
are stopped. Prints the median, 95th percentile and maximum of the per-run mean, and the median
against the 20 ms a step of a small model can afford (the ratio; under 1 is within it).

    python bench/prune_roundtrip.py [--steps 20]
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
from pathlib import Path

TARGET_MS = 20.0
OBJECTIVE = textwrap.dedent("""
    import time


    def timed(lr, trial, steps):
        spent, asked = 0.0, 0
        for step in range(steps):
            trial.report(step, loss=lr + 1.0 / (step + 1))
            t = time.perf_counter()
            stop = trial.should_prune()
            spent += time.perf_counter() - t
            asked += 1
            if stop:
                break
            time.sleep(0.01)
        return {"loss": lr + 1.0 / (step + 1), "ask_ms": 1000 * spent / asked}
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="reports (and asks) per run")
    args = parser.parse_args()

    import sweeper

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prune_timed.py").write_text(OBJECTIVE)
        spec = sweeper.load_spec(
            {
                "experiment": "roundtrip",
                "objective": "prune_timed:timed",
                "metrics": [{"loss": "minimize"}, {"ask_ms": "minimize"}],
                "variables": {
                    "lr": {"choice": [0.0, 0.1, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]},
                    "steps": args.steps,
                },
                "search": {"method": "grid"},
                "replicates": 2,
                "pruner": {"method": "median", "n_startup_trials": 1, "n_warmup_steps": 2},
            },
            root=root,
        )
        table = sweeper.launch(spec, results=root / "results", backend="ray", progress=False).table
    ms = table["ask_ms"].dropna()
    print(f"should_prune round trip on Ray, {len(ms)} runs ({(table.status == 'pruned').sum()} pruned):")
    print(f"  median {ms.median():.2f} ms, p95 {ms.quantile(0.95):.2f} ms, max {ms.max():.2f} ms")
    print(f"  median / {TARGET_MS:g} ms target: {ms.median() / TARGET_MS:.3f}")


if __name__ == "__main__":
    main()
