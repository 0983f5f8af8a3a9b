"""Resume's restore of a big trial table: time and peak memory, and a digest to compare readers.

    python bench/resume_scale.py                       # 10^5 and 10^6 rows
    python bench/resume_scale.py --sizes 100000        # some sizes
    python bench/resume_scale.py --src /path/to/other  # restore with another checkout (before/after)

Each table is written once with pyarrow (no sweep run), as a driver killed mid-sweep leaves it: a
compact file and three parts, 1 % failed runs, the last trials with replicates missing. Each restore
runs in a fresh Python process; its peak RSS is the process's own peak during the restore (VmHWM),
beside the RSS it had after its imports. The digest hashes everything the restore returns (counts,
best, times, the trials to complete and every finished trial as the search would read it), so two
checkouts that print the same digest restored the same thing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def spec_data(trials: int, replicates: int) -> dict[str, Any]:
    return {
        "experiment": "bench-restore",
        "objective": "objectives:quadratic",
        "metrics": [{"value": "minimize"}],
        "variables": {k: {"float": [-1.0, 1.0]} for k in "xyz"},
        "search": {"method": "random", "trials": trials + 1000, "seed": 0},
        "replicates": replicates,
    }


def write(folder: Path, rows: int, replicates: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import sweeper
    from sweeper.results.table import trial_schema

    trials = rows // replicates
    spec = sweeper.load_spec(spec_data(trials, replicates), root=str(REPO / "bench"))
    rng = np.random.default_rng(0)
    trial = np.repeat(np.arange(trials), replicates)
    rep = np.tile(np.arange(replicates), trials)
    keep = np.ones(len(trial), dtype=bool)
    if replicates > 1:  # the last 64 trials were in flight: their later replicates have no row
        keep[(trial >= trials - 64) & (rep > 0)] = False
    trial, rep = trial[keep], rep[keep].astype(np.int32)
    n = len(trial)
    start = (1_767_225_600 + np.arange(n) * 0.001) * 1e6
    xyz = {k: np.repeat(rng.uniform(-1, 1, trials), replicates)[keep] for k in "xyz"}
    failed = rng.random(n) < 0.01
    status = np.where(failed, "failed", "complete")
    columns = {
        "trial": trial,
        "replicate": rep,
        "seed": rep.astype(np.int64),
        "status": status,
        "stage": np.full(n, "search"),
        **xyz,
        "value": np.where(failed, np.nan, xyz["x"] ** 2 + rng.normal(0, 0.1, n)),
        "started_at": pa.array(start.astype("int64"), pa.timestamp("us", tz="UTC")),
        "ended_at": pa.array((start + 500).astype("int64"), pa.timestamp("us", tz="UTC")),
        "duration_s": np.full(n, 0.0005),
        "node": np.full(n, "127.0.0.1"),
        "attempt": np.ones(n, dtype=np.int32),
        "error": pa.array([None] * n, pa.string()),
    }
    table = pa.table({f.name: columns[f.name] for f in trial_schema(spec)}, schema=trial_schema(spec))
    out = folder / "trials"
    out.mkdir(parents=True)
    cut = [0, int(n * 0.97), int(n * 0.98), int(n * 0.99), n]
    names = ["compact-000010", "part-000011", "part-000012", "part-000013"]
    for name, a, b in zip(names, cut, cut[1:], strict=False):
        pq.write_table(table.slice(a, b - a), out / f"{name}.parquet", compression="zstd")
    (folder / "spec.json").write_text(json.dumps(spec_data(trials, replicates)))


def _rss(field: str) -> float:
    """A line of /proc/self/status in MiB (``ru_maxrss`` would count the parent's pages before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(folder: Path) -> None:
    import sweeper
    from sweeper.engine.resume import restore
    from sweeper.search.searcher import Searcher

    spec = sweeper.load_spec(json.loads((folder / "spec.json").read_text()), root=str(REPO / "bench"))
    import numpy  # noqa: F401  (counted in the baseline, as any launch has them loaded)
    import pyarrow.parquet  # noqa: F401

    base = _rss("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) from here on
    begin = time.time()
    got = restore(spec, folder, Searcher(spec))
    took = time.time() - begin
    peak = _rss("VmHWM")
    h = hashlib.sha256()
    head = (
        got.runs_done,
        got.trials_done,
        sorted(got.counts.items()),
        got.best,
        got.first_start,
        got.last_end,
    )
    h.update(repr(head).encode())
    for k, p in sorted(got.partial.items()):
        h.update(repr((k, p.params, p.missing, p.values, p.statuses, p.attempts)).encode())
    begin = time.time()
    for item in got.finished:
        h.update(repr(item).encode())
    read = time.time() - begin
    print(
        "RESULT "
        + json.dumps(
            {
                "restore_s": took,
                "read_s": read,
                "base_mib": base,
                "peak_mib": peak,
                "trials": got.trials_done + len(got.partial),
                "partial": len(got.partial),
                "digest": h.hexdigest()[:16],
            }
        ),
        flush=True,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="rows, comma-separated")
    p.add_argument("--replicates", type=int, default=1)
    p.add_argument("--src", default=str(REPO), help="the checkout whose sweeper restores")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--write", help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(Path(args.child))
        return
    if args.write:
        write(Path(args.write), args.rows, args.replicates)
        return
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([args.src, str(REPO / "bench")]))
    print(f"restore with {args.src}; load average {os.getloadavg()[0]:.1f} at start")
    head = [
        "rows",
        "trials",
        "to complete",
        "restore s",
        "read finished s",
        "peak RSS MiB",
        "after imports MiB",
    ]
    print("| " + " | ".join([*head, "digest", "load"]) + " |")
    print("|---" * (len(head) + 2) + "|", flush=True)
    with tempfile.TemporaryDirectory(prefix="sweeper-restore-") as tmp:
        for rows in (int(s) for s in args.sizes.split(",")):
            folder = Path(tmp) / f"t{rows}"
            mine = [sys.executable, __file__, "--write", str(folder), "--rows", str(rows)]
            subprocess.run([*mine, "--replicates", str(args.replicates)], check=True)
            cmd = [sys.executable, __file__, "--child", str(folder)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"| {rows:,} | failed: {out.stderr.strip().splitlines()[-1:]} |", flush=True)
                continue
            r = json.loads(line[7:])
            cells = [f"{rows:,}", f"{r['trials']:,}", f"{r['partial']:,}", f"{r['restore_s']:.2f}"]
            cells += [f"{r['read_s']:.2f}", f"{r['peak_mib']:.0f}", f"{r['base_mib']:.0f}", r["digest"]]
            print("| " + " | ".join([*cells, Path("/proc/loadavg").read_text().strip()]) + " |", flush=True)


if __name__ == "__main__":
    main()
