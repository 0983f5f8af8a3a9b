"""Sweeper against its peers and the plain-loop limit, on the same workloads, in one invocation.

    python bench/peers.py            # the full set (about 5-10 minutes on 2 cores)
    python bench/peers.py --quick    # a tenth of the sizes, to check it runs

Every measurement runs in its own fresh Python process, so peak RSS is that process's own (the
driver's; Ray's workers and daemons are not counted) and no tool warms another's caches.
Throughput is taken from the first run's start to the last run's end (sweeper: the table's
``started_at``/``ended_at``; the others: the same instants recorded inside the objective), and the
whole wall time, Ray's start-up and shutdown included, is printed beside it.

Workloads (the issue's numbering):
 1. 2,000 trials of a 20 ms sleep, random search, 2 CPUs: efficiency = ideal (N x 20 ms / 2) / time.
 2. 10,000 trials of a zero-cost quadratic of 3 floats, random search: trials/s.
 3. 2,000 trials of the quadratic with TPE: time against Optuna's sequential ``study.optimize``.
 5. Peak driver RSS for 10,000 vs 50,000 zero-cost trials.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CPUS = 2
SLEEP_S = 0.02


# -- one measurement, in a child process ---------------------------------------------------------
def _space_spec(n: int, method: str, objective: str) -> dict:
    return {
        "experiment": f"bench-{objective}-{method}-{n}",
        "objective": f"objectives:{objective}",
        "metrics": [{"value": "minimize"}],
        "variables": {"x": {"float": [-1.0, 1.0]}, "y": {"float": [-1.0, 1.0]}, "z": {"float": [-1.0, 1.0]}},
        "search": {"method": method, "trials": n, "seed": 0},
        "resources": {"cpus": 1},
    }


def run_sweeper(backend: str, n: int, method: str, objective: str) -> dict:
    import ray

    import sweeper

    if backend == "ray":  # the 2-CPU machine of the targets, whatever this one has
        ray.init(
            address="local",
            num_cpus=CPUS,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="error",
        )
    spec = sweeper.load_spec(_space_spec(n, method, objective), root=str(HERE))
    with tempfile.TemporaryDirectory() as results:
        sweep = sweeper.launch(spec, results=results, backend=backend)
        rows = len(sweep.table)
        best = sweep.best["mean"] if sweep.best else None
    if backend == "ray":
        ray.shutdown()
    s = sweep.stats
    return {"span": s.last_end - s.first_start, "rows": rows, "best": best}


def run_loop(n: int, objective: str) -> dict:
    import numpy as np
    from objectives import quadratic, sleep20

    func = sleep20 if objective == "sleep20" else quadratic
    rng = np.random.default_rng(0)
    start = time.time()
    best = min(func(*point) for point in rng.uniform(-1, 1, size=(n, 3)).tolist())
    return {"span": time.time() - start, "rows": n, "best": best}


def run_optuna(n: int, method: str, objective: str, jobs: int) -> dict:
    import optuna
    from objectives import quadratic, sleep20

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    func = sleep20 if objective == "sleep20" else quadratic
    sampler = optuna.samplers.TPESampler(seed=0) if method == "tpe" else optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(sampler=sampler)
    times: list[float] = []

    def objective_(trial: optuna.Trial) -> float:
        t = time.time()
        value = func(
            trial.suggest_float("x", -1, 1), trial.suggest_float("y", -1, 1), trial.suggest_float("z", -1, 1)
        )
        times.extend((t, time.time()))
        return value

    study.optimize(objective_, n_trials=n, n_jobs=jobs)
    return {"span": max(times) - min(times), "rows": len(study.trials), "best": study.best_value}


def run_tune(n: int, objective: str) -> dict:
    import ray
    from objectives import quadratic, sleep20
    from ray import tune

    func = sleep20 if objective == "sleep20" else quadratic
    ray.init(
        address="local", num_cpus=CPUS, include_dashboard=False, log_to_driver=False, logging_level="error"
    )

    def trainable(config: dict) -> dict:
        t = time.time()
        value = func(config["x"], config["y"], config["z"])
        return {"value": value, "t0": t, "t1": time.time()}

    with tempfile.TemporaryDirectory() as storage:
        tuner = tune.Tuner(
            trainable,
            param_space={k: tune.uniform(-1, 1) for k in "xyz"},
            tune_config=tune.TuneConfig(
                num_samples=n, max_concurrent_trials=CPUS, reuse_actors=True, metric="value", mode="min"
            ),
            run_config=tune.RunConfig(storage_path=storage, verbose=0),
        )
        grid = tuner.fit()
        df = grid.get_dataframe()
    ray.shutdown()
    return {"span": float(df["t1"].max() - df["t0"].min()), "rows": len(df), "best": float(df["value"].min())}


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(HERE))
    start = time.time()
    if args.tool.startswith("sweeper-"):
        out = run_sweeper(args.tool.removeprefix("sweeper-"), args.n, args.method, args.objective)
    elif args.tool == "loop":
        out = run_loop(args.n, args.objective)
    elif args.tool.startswith("optuna"):
        out = run_optuna(args.n, args.method, args.objective, jobs=2 if args.tool == "optuna-2" else 1)
    elif args.tool == "tune":
        out = run_tune(args.n, args.objective)
    else:
        raise SystemExit(f"unknown tool {args.tool}")
    out["wall"] = time.time() - start
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


# -- the table -----------------------------------------------------------------------------------
def measure(tool: str, n: int, method: str, objective: str, timeout: float = 900) -> dict:
    env = dict(
        os.environ,
        RAY_USAGE_STATS_ENABLED="0",
        RAY_AUTH_MODE="disabled",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )
    env.pop("RAY_ADDRESS", None)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        tool,
        "--n",
        str(n),
        "--method",
        method,
        "--objective",
        objective,
    ]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"tool": tool, "n": n, "error": f"timed out after {timeout:.0f} s"}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"tool": tool, "n": n, **json.loads(line[7:])}
    return {"tool": tool, "n": n, "error": (out.stderr or out.stdout).strip().splitlines()[-1:]}


def show(title: str, rows: list[dict], *, ideal: float | None = None, versus: str | None = None) -> None:
    print(f"\n### {title}", flush=True)
    base = next((r for r in rows if r["tool"] == versus and "span" in r), None)
    head = "| tool | trials | wall s (all) | run span s | trials/s | peak RSS MiB |"
    head += " efficiency |" if ideal else ""
    head += f" time / {versus} |" if versus else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        if "error" in r:
            print(f"| {r['tool']} | {r['n']} | failed: {r['error']} |")
            continue
        line = (
            f"| {r['tool']} | {r['n']:,} | {r['wall']:.2f} | {r['span']:.2f} | "
            f"{r['n'] / r['span']:,.0f} | {r['rss_mib']:.0f} |"
        )
        if ideal:
            line += f" {ideal * r['n'] / r['span']:.3f} |"
        if versus:
            line += f" {r['span'] / base['span']:.2f}x |" if base else " - |"
        print(line)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    p.add_argument("--only", default="1,2,3,5", help="workloads to run, e.g. 1,2")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--method", default="random", help=argparse.SUPPRESS)
    p.add_argument("--objective", default="quadratic", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.tool = args.child
        child(args)
        return
    scale = 0.1 if args.quick else 1.0
    only = set(args.only.split(","))
    size = lambda n: max(20, int(n * scale))  # noqa: E731
    print(
        f"sweeper benchmark: {os.cpu_count()} cores here, {CPUS} CPUs given to Ray; "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    if "1" in only:
        n = size(2000)
        rows = [measure(t, n, "random", "sleep20") for t in ("sweeper-ray", "optuna-2")]
        rows.append(measure("tune", size(300), "random", "sleep20"))
        show(
            f"1. {n:,} trials x 20 ms sleep, random, {CPUS} CPUs (ideal {n * SLEEP_S / CPUS:.0f} s)"
            " - efficiency = ideal / run span",
            rows,
            ideal=SLEEP_S / CPUS,
        )
    if "2" in only:
        n = size(10_000)
        rows = [
            measure(t, n, "random", "quadratic")
            for t in ("loop", "optuna-1", "optuna-2", "sweeper-local", "sweeper-ray")
        ]
        rows.append(measure("tune", size(500), "random", "quadratic"))
        show(f"2. {n:,} zero-cost trials, random search", rows, versus="loop")
    if "3" in only:
        n = size(2000)
        rows = [
            measure(t, n, "tpe", "quadratic")
            for t in ("optuna-1", "optuna-2", "sweeper-local", "sweeper-ray")
        ]
        show(f"3. {n:,} zero-cost trials, TPE", rows, versus="optuna-1")
    if "5" in only:
        rows = [
            measure(t, size(n), "random", "quadratic")
            for t in ("sweeper-ray", "sweeper-local")
            for n in (10_000, 50_000)
        ]
        show("5. peak driver RSS, zero-cost trials", rows)
        for tool in ("sweeper-ray", "sweeper-local"):
            small, big = (r for r in rows if r["tool"] == tool)
            if "rss_mib" in small and "rss_mib" in big:
                print(
                    f"{tool}: {big['n'] // small['n']}x the trials -> "
                    f"{big['rss_mib'] / small['rss_mib']:.2f}x the peak RSS"
                )


if __name__ == "__main__":
    main()
