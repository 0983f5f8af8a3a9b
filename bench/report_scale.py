"""How long `sweeper report`, `table` and `status` take on big synthetic trial tables, and their memory.

    python bench/report_scale.py                      # 2,000 / 20,000 / 200,000 trials x 3 replicates
    python bench/report_scale.py --sizes 2000 --src /path/to/other/checkout   # the same on other code
    python bench/report_scale.py --importance         # is fANOVA's estimate stable at its sample / trees?
    python bench/report_scale.py --factors --sizes 2000 20000   # replicates: {data: 4, init: 3}

Each size gets a results folder (experiment.json and one Parquet file, written with pyarrow, no
sweep run): three models, a log-scaled float, an int, 1 % failed runs, a compare: block. Each command
runs in a fresh Python process (imports included, as a user sees it); peak RSS is that process's
``ru_maxrss`` (and its children's: the report's figure process), and its CPU seconds (user + system,
its children's included) are printed beside the wall seconds, since the machine is shared. A
command slower than --timeout is reported as such. Targets (issue 13), for report, table and status
alike: < 5 s, 15 s, 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SPEC = {
    "experiment": "scale",
    "objective": "bench.objectives:quadratic",  # never run: the folder is written directly
    "metrics": [{"acc": "maximize"}, {"fit_seconds": "minimize"}],
    "variables": {
        "model": {"choice": ["a", "b", "c"]},
        "lr": {"float": [1e-4, 1e-1], "log": True},
        "depth": {"int": [1, 8]},
    },
    "search": {"method": "random", "trials": 0},
    "replicates": 3,
    "compare": {"variable": "model", "treatment": "b", "baseline": "a", "metric": "acc"},
}
CHILD = (  # `sweeper ARGS` as its console script runs it; the peaks are printed at its exit
    "import atexit, resource, sys\n"
    "def peaks():\n"
    "    u, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "    print(f'BENCH {u.ru_maxrss} {c.ru_maxrss}', file=sys.stderr, flush=True)\n"
    "atexit.register(peaks)\n"
    "import sweeper.cli as cli\n"
    "cli.run() if hasattr(cli, 'run') else sys.exit(cli.main())\n"  # --src of a sweeper before run()
)


def write_folder(root: Path, trials: int, replicates: int, seed: int = 0, factors: bool = False) -> Path:
    """A results folder of ``trials`` x ``replicates`` rows with a known structure; ``factors``: the
    replicates are a full factorial of seed factors data (4) x init (3), each with its seed column."""
    rng = np.random.default_rng(seed)
    folder = root / f"scale-{trials}{'-factors' if factors else ''}"
    (folder / "trials").mkdir(parents=True)
    reps: int | dict[str, int] = {"data": 4, "init": 3} if factors else replicates
    replicates = 12 if factors else replicates
    spec = dict(SPEC, search={"method": "random", "trials": trials}, replicates=reps)
    record = {"name": "scale", "spec": spec, "root": str(Path(__file__).parent.parent), "status": "finished"}
    (folder / "experiment.json").write_text(json.dumps(record))
    n = trials * replicates
    trial = np.repeat(np.arange(trials), replicates)
    replicate = np.tile(np.arange(replicates), trials)
    model = rng.choice(["a", "b", "c"], trials)[trial]
    lr = 10 ** rng.uniform(-4, -1, trials)[trial]
    depth = rng.integers(1, 9, trials)[trial]
    acc = 0.8 + 0.01 * (model == "b") - 0.02 * np.abs(np.log10(lr) + 2.5) + 0.003 * depth
    acc = acc + rng.normal(0, 0.01, replicates)[replicate] + rng.normal(0, 0.01, n)
    seeds = {}
    if factors:  # the data split moves the result 3x more than the initialisation
        data, init = replicate // 3, replicate % 3
        acc = (
            acc
            + rng.normal(0, 0.015, (trials, 4))[trial, data]
            + rng.normal(0, 0.005, (trials, 3))[trial, init]
        )
        seeds = {"data_seed": pa.array(100 + data, pa.int64()), "init_seed": pa.array(200 + init, pa.int64())}
    status = np.where(rng.random(n) < 0.01, "failed", "complete")
    start = 1.7e15 + np.arange(n) * 1e5
    table = pa.table(
        {
            "trial": pa.array(trial, pa.int64()),
            "replicate": pa.array(replicate, pa.int32()),
            "seed": pa.array(1000 + replicate, pa.int64()),
            **seeds,
            "status": status,
            "model": model,
            "lr": lr,
            "depth": pa.array(depth, pa.int64()),
            "acc": np.where(status == "complete", acc, np.nan),
            "fit_seconds": np.exp(rng.normal(-3, 0.3, n)) * (1 + (model == "c")),
            "started_at": pa.array(start.astype("int64"), pa.timestamp("us", tz="UTC")),
            "ended_at": pa.array((start + 5e4).astype("int64"), pa.timestamp("us", tz="UTC")),
            "duration_s": np.full(n, 0.05),
            "node": np.full(n, "n1"),
            "attempt": pa.array(np.ones(n, dtype=np.int32)),
            "error": pa.array(
                np.where(status == "failed", "ValueError: synthetic failure", None), pa.string()
            ),
        }
    )
    pq.write_table(table, folder / "trials" / "compact-000000.parquet", compression="zstd")
    return folder


Measured = tuple[float | None, float | None, float | None, float | None]


def run(args: list[str], src: str | None, timeout: float, child: bool = True) -> Measured:
    """(seconds, CPU seconds, peak MiB, its children's peak MiB) of ``sweeper ARGS`` in a fresh process
    (``child=False``: of ``python ARGS``); Nones past the timeout. Seconds and CPU seconds are measured
    from here, from the start of Python to the end of its exit, as a user waits for them; CPU seconds
    (user + system) include the process's children (the report's figure process) and move far less than
    wall seconds when other jobs share the cores."""
    import resource

    env = dict(os.environ, MPLBACKEND="Agg")
    for name in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"):  # set on this machine, not by users
        env.pop(name, None)
    if src:
        env["PYTHONPATH"] = src
    command = [sys.executable, "-c", CHILD, *args] if child else [sys.executable, *args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        # cwd outside any checkout: `python -c` puts the cwd first on sys.path, before --src
        out = subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=timeout, cwd=tempfile.gettempdir()
        )
    except subprocess.TimeoutExpired:
        return None, None, None, None
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if not child:
        return seconds, cpu, after.ru_maxrss / 1024, None  # the only child so far: the imports
    line = next((x for x in out.stderr.splitlines() if x.startswith("BENCH ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"sweeper {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    _, rss_kib, child_kib = line.split()
    return seconds, cpu, int(rss_kib) / 1024, int(child_kib) / 1024


def importance_stability(root: Path, seeds: int = 5) -> None:
    """fANOVA's shares on the 2,000-trial table for several (sample, trees): CPU seconds per run and
    each variable's mean and sd over ``seeds`` sample seeds, against Optuna's default of 64 trees.
    The report's setting is fine when its spread is close to the default's and the order agrees."""
    import sweeper.analysis.importance as imp
    from sweeper.results.table import load, read_spec

    folder = write_folder(root, 2000, 3)
    spec, df = read_spec(folder), load(folder)
    imp.importance(df, spec)  # imports (optuna, scikit-learn) before any timing
    report = (imp.SAMPLE, imp.FANOVA_TREES)
    print("| sample | trees | CPU s per run | share: mean ± sd over seeds | order as 300 x 64 |")
    print("|---|---|---|---|---|")
    reference: list[str] = []
    for sample, trees in dict.fromkeys(((300, 64), (300, 16), (300, 8), (200, 16), (200, 8), report)):
        imp.SAMPLE, imp.FANOVA_TREES = sample, trees
        started = time.process_time()
        runs = [imp.importance(df, spec, seed=seed).values for seed in range(seeds)]
        cpu = (time.process_time() - started) / seeds
        names = sorted(runs[0])
        mean = {n: float(np.mean([r[n] for r in runs])) for n in names}
        order = sorted(names, key=lambda n: -mean[n])
        reference = reference or order
        shares = ", ".join(f"{n} {mean[n]:.3f} ± {np.std([r[n] for r in runs]):.3f}" for n in order)
        mark = " (the report's)" if (sample, trees) == report else ""
        print(f"| {sample}{mark} | {trees} | {cpu:.2f} | {shares} | {order == reference} |", flush=True)
    imp.SAMPLE, imp.FANOVA_TREES = report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 200000])
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--src", help="import sweeper from this source folder instead (before/after)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--importance", action="store_true", help="fANOVA's stability at a few settings")
    parser.add_argument("--factors", action="store_true", help="replicates: {data: 4, init: 3} (12 each)")
    a = parser.parse_args()
    if a.importance:
        with tempfile.TemporaryDirectory(prefix="report-scale-") as tmp:
            importance_stability(Path(tmp))
        return
    with open("/proc/loadavg") as fh:
        print(f"<!-- load average at start: {fh.read().strip()} -->")
    print(
        "| trials x replicates | command | seconds | CPU seconds | peak RSS MiB | child's peak MiB | target |"
    )
    print("|---|---|---|---|---|---|---|")
    targets = {2000: 5, 20000: 15, 200000: 60}
    imports = ["-c", "import pandas, pyarrow.parquet, scipy.stats, matplotlib.figure, optuna"]
    seconds, cpu, peak, _ = run(imports, a.src, a.timeout, child=False)
    print(
        f"| - | imports alone (pandas, pyarrow, scipy, matplotlib, optuna) | {seconds:.2f} | {cpu:.2f} "
        f"| {peak:.0f} | | |"
    )
    with tempfile.TemporaryDirectory(prefix="report-scale-") as tmp:
        for size in a.sizes:
            started = time.perf_counter()
            folder = write_folder(Path(tmp), size, a.replicates, factors=a.factors)
            reps = "(4 x 3)" if a.factors else a.replicates
            made = time.perf_counter() - started
            for name, args in (
                ("status", ["status", str(folder)]),
                ("table", ["table", str(folder), "--format", "csv"]),
                ("report", ["report", str(folder)]),
            ):
                seconds, cpu, peak, kid = run(args, a.src, a.timeout)
                target = f"< {targets[size]} s" if size in targets else ""
                shown = f"{seconds:.2f}" if seconds is not None else f"> {a.timeout:g} (timed out)"
                used = f"{cpu:.2f}" if cpu is not None else ""
                mib = f"{peak:.0f}" if peak is not None else ""
                kids = f"{kid:.0f}" if kid else ""  # 0: no child process
                print(
                    f"| {size:,} x {reps} | {name} | {shown} | {used} | {mib} | {kids} | {target} |",
                    flush=True,
                )
            with open("/proc/loadavg") as fh:
                print(
                    f"<!-- table written in {made:.1f} s; load average now: {fh.read().strip()} -->",
                    flush=True,
                )


if __name__ == "__main__":
    main()
