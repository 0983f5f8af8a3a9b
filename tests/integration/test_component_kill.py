"""Component links survive a SIGKILL of the driver: every row the trial table records has its links.

A run's output link and its trial's input links are written before the table part holding its row
(write-ahead), and a resume drops the links of runs the table never recorded (they run again and
link afresh), so after each kill every recorded row has its links, and after the resume every row
has exactly its own: one output link per run, one input link per declared input per trial, no
link without a row. The kills land right after a table part appears (when the old code still held
that run's links in a buffer for up to a second), and at random moments after.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

import sweeper
from sweeper.results.components import load_components

ROOT = Path(__file__).resolve().parents[2]
TRIALS, REPLICATES = 30, 2

CODE = textwrap.dedent("""
    import time


    def fit(x, seed, trial, source):
        time.sleep(0.1)
        (trial.artifact_dir / "model.txt").write_text(f"{x!r} {seed}")
        trial.log_component("model", "model.txt", kind="model")
        return x * x
""")

SWEEP = f"""
experiment: links
objective: link_objectives:fit
metrics: [loss: minimize]
variables:
  x: {{float: [-1.0, 1.0]}}
search: {{method: random, trials: {TRIALS}, seed: 5}}
replicates: {REPLICATES}
components:
  source: {{value: {{origin: synthetic}}}}
"""


def _parts(folder: Path) -> int:
    trials = folder / "trials"
    return sum(1 for p in trials.iterdir() if p.suffix == ".parquet") if trials.is_dir() else 0


def _check(folder: Path, *, final: bool) -> int:
    """Every recorded row has its output link, every trial whose rows are all in has its input link;
    in the end (``final``) exactly those links and no other. Returns the rows recorded."""
    if not (folder / "trials").is_dir():
        return 0
    table = sweeper.load(folder)
    comps = load_components(folder)
    links = comps.dropna(subset=["trial"])
    out = links[links["role"] == "output"]
    ins = links[links["role"] == "input"]
    rows = set(zip(table["trial"].astype(int), table["replicate"].astype(int), strict=True))
    linked = set(zip(out["trial"].astype(int), out["replicate"].astype(int), strict=True))
    assert rows <= linked, f"recorded runs without their output link: {sorted(rows - linked)}"
    done = {int(t) for t, n in table.groupby("trial").size().items() if n == REPLICATES}
    assert done <= set(ins["trial"].astype(int)), f"trials without input links: {done - set(ins['trial'])}"
    if final:
        assert len(out) == len(rows) == TRIALS * REPLICATES, "one output link per run, no orphan"
        assert set(ins["trial"].astype(int)) == done == set(range(TRIALS))
        assert not ins.duplicated(["id", "trial"]).any() and len(ins) == TRIALS
        for _, link in out.iterrows():  # each run's link names the file that run wrote
            row = table[(table["trial"] == link["trial"]) & (table["replicate"] == link["replicate"])]
            path = Path(link["uri"].removeprefix("file://"))
            assert path.read_text() == f"{float(row['x'].iloc[0])!r} {int(row['seed'].iloc[0])}"
    return len(rows)


def _kill_cycles(cmd: list[str], folder: Path, env: dict[str, str], kills: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    seen = []
    for cycle in range(kills):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        start = _parts(folder)
        deadline = time.monotonic() + 180
        while _parts(folder) <= start and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if cycle % 2:  # the odd kills at a random moment after a part, the even ones right at it
            time.sleep(rng.uniform(0.0, 0.8))
        assert proc.poll() is None, proc.communicate()[0].decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        seen.append(_check(folder, final=False))
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert _check(folder, final=True) == TRIALS * REPLICATES
    assert 0 < seen[0] < TRIALS * REPLICATES, seen
    return seen


def _setup(tmp_path: Path) -> Path:
    sweep_file = tmp_path / "links.yaml"
    sweep_file.write_text(SWEEP)
    (tmp_path / "link_objectives.py").write_text(CODE)  # beside the sweep file: Ray workers find it there
    return sweep_file


def test_sigkill_keeps_every_recorded_rows_links_local(tmp_path: Path) -> None:
    sweep_file = _setup(tmp_path)
    cmd = [sys.executable, "-m", "sweeper", "launch", str(sweep_file), "--backend", "local"]
    cmd += ["--results", str(tmp_path / "results"), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seen = _kill_cycles(cmd, tmp_path / "results" / "links", env, kills=3, seed=7)
    print(f"\nrows after each kill: {seen}; every one linked, and all {TRIALS * REPLICATES} after resume")


def test_sigkill_keeps_every_recorded_rows_links_on_ray(tmp_path: Path, ray_session: Any) -> None:
    sweep_file = _setup(tmp_path)
    address = ray_session.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "sweeper", "launch", str(sweep_file), "--address", address]
    cmd += ["--results", str(tmp_path / "results"), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seen = _kill_cycles(cmd, tmp_path / "results" / "links", env, kills=2, seed=8)
    print(f"\nrows after each kill: {seen}; every one linked, and all {TRIALS * REPLICATES} after resume")


def test_a_resume_rebuilds_input_links_a_folder_lacks(tmp_path: Path) -> None:
    """A folder whose links were lost (written by an older sweeper, or removed) gets its finished
    trials' input links back from what the table records, once."""
    sweep_file = _setup(tmp_path)
    folder = tmp_path / "results" / "links"
    sweeper.launch(str(sweep_file), backend="local", results=tmp_path / "results", progress=False)
    links = folder / "components" / "links"
    kept = pq.read_table(links)
    for p in links.iterdir():
        p.unlink()
    pq.write_table(kept.filter(pc.equal(kept["role"], "output")), links / "part-000000.parquet")
    assert load_components(folder).query("role == 'input'").empty
    sweeper.launch(str(sweep_file), backend="local", results=tmp_path / "results", progress=False)
    _check(folder, final=True)
