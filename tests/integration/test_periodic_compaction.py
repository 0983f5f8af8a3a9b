"""The trial table compacts in the background while a sweep runs, and no reader, kill or failure of a
compaction loses or duplicates a row (real files, real threads, a real driver killed with SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sweeper.results import compaction as c
from sweeper.results import table as t
from sweeper.results.atomic import atomic_write_table
from sweeper.results.reading import read_folder

SCHEMA = pa.schema(
    [("trial", pa.int64()), ("replicate", pa.int32()), ("status", pa.string()), ("v", pa.float64())]
)


def _row(i: int) -> dict[str, Any]:
    return {"trial": i, "replicate": 0, "status": "complete", "v": float(i)}


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _plain_trials(folder: Path) -> list[int]:
    """The trial column as pyarrow.dataset reads the folder as is (every file in it)."""
    import pyarrow.dataset as ds

    return ds.dataset(folder, format="parquet").to_table(columns=["trial"]).column("trial").to_pylist()


def test_rows_written_while_a_compaction_runs_arrive_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(c, "FILE_ROWS", 0)  # compact by rows alone: after 3 parts of 10
    started, go, real = threading.Event(), threading.Event(), c.compact_into

    def held(*a: Any, **k: Any) -> int:
        started.set()
        assert go.wait(60)
        return real(*a, **k)

    monkeypatch.setattr(c, "compact_into", held)
    folder = tmp_path / "trials"
    writer = t.TableWriter(folder, SCHEMA, flush_rows=10, flush_s=1e9, compact_rows=30)
    for i in range(30):
        writer.append([_row(i)])
    assert started.wait(60)  # the compaction of parts 0-2 has begun, in its thread
    for i in range(30, 75):  # parts 3-7 land while it runs
        writer.append([_row(i)])
    writer.flush()
    assert _names(folder) == [f"part-{n:06d}.parquet" for n in range(8)]
    go.set()
    deadline = time.monotonic() + 60
    while "compact-000002.parquet" not in _names(folder) and time.monotonic() < deadline:
        time.sleep(0.01)
    # swapped in: the compact file of parts 0-2 and the parts written meanwhile, none of them lost
    assert _names(folder) == ["compact-000002.parquet"] + [f"part-{n:06d}.parquet" for n in range(3, 8)]
    assert sorted(_plain_trials(folder)) == list(range(75))
    assert sorted(read_folder(folder).column("trial").to_pylist()) == list(range(75))
    writer.close()
    assert len(writer.compactions) == 1
    assert _names(folder) == ["compact-000007.parquet"]
    assert sorted(_plain_trials(folder)) == list(range(75))
    assert not (tmp_path / ".trials.compacting").exists()


def test_readers_polling_during_a_sweep_with_compactions_never_see_a_duplicate_or_miss_a_flushed_row(
    tmp_path: Path,
) -> None:
    import pandas as pd

    folder, n = tmp_path / "trials", 3000
    writer = t.TableWriter(folder, SCHEMA, flush_rows=10**9, flush_s=1e9, compact_rows=0)
    flushed = [0]

    def write() -> None:
        for i in range(5, n):
            writer.append([_row(i)])
            if (i + 1) % 5 == 0:
                writer.flush()
                flushed[0] = i + 1
        writer.close()

    readers: dict[str, Any] = {
        "read_folder": lambda: read_folder(folder).column("trial").to_pylist(),
        "pyarrow.dataset": lambda: _plain_trials(folder),
        "pandas": lambda: pd.read_parquet(folder, columns=["trial"])["trial"].tolist(),
    }
    good = dict.fromkeys(readers, 0)
    mixed = 0  # reads of a folder holding a compact file and parts after it
    writer.append([_row(i) for i in range(5)])  # the first part: from here on every reader has rows
    writer.flush()
    flushed[0] = 5
    thread = threading.Thread(target=write)
    thread.start()
    while thread.is_alive():
        for name, read in readers.items():
            before = flushed[0]
            names = _names(folder)
            try:
                trials = read()
            except (OSError, pa.ArrowInvalid):  # a plain reader listed the folder just before a swap
                continue
            assert len(trials) == len(set(trials)), f"{name} read a duplicate row"
            assert set(range(before)) <= set(trials), f"{name} missed a flushed row"
            good[name] += 1
            mixed += any(x.startswith("compact-") for x in names) and any(
                x.startswith("part-") for x in names
            )
    thread.join()
    assert len(writer.compactions) >= 10 and mixed >= 1, (writer.compactions, mixed)
    assert all(good.values()), good
    assert sorted(_plain_trials(folder)) == list(range(n))


def test_the_geometric_policy_compacts_a_few_times_not_at_every_part(tmp_path: Path) -> None:
    folder = tmp_path / "trials"
    writer = t.TableWriter(folder, SCHEMA, flush_rows=1000, flush_s=1e9, compact_rows=10_000)
    for i in range(100_000):  # 100 parts
        writer.append([_row(i)])
    writer.close()
    # each compaction waits for parts costing as much as the compact file: its cost grows by half
    # at least each time, so 100 parts of 1,000 rows take at most 9 (and at least the first)
    assert 1 <= len(writer.compactions) <= 9, writer.compactions
    assert read_folder(folder).num_rows == 100_000


def test_a_compaction_that_fails_for_room_leaves_the_sweep_running_and_its_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sweeper
    from tests.conftest import REPO, sweep_spec

    blocker = tmp_path / "blocker"
    blocker.write_text("a file: no folder can be made under it")
    monkeypatch.setattr(c, "_stage", lambda folder: blocker / "stage")
    monkeypatch.setattr(c, "FILE_ROWS", 0)
    monkeypatch.setitem(t.TableWriter.__init__.__kwdefaults__, "flush_rows", 10)
    monkeypatch.setitem(t.TableWriter.__init__.__kwdefaults__, "compact_rows", 0)
    spec = sweeper.load_spec(
        sweep_spec(experiment="full", search={"method": "random", "trials": 40, "seed": 1}),
        root=str(REPO / "tests"),
    )
    sweeper.launch(spec, results=tmp_path / "results", backend="local", progress=False)
    assert "compaction put off, the parts stay as they are" in capsys.readouterr().err
    folder = tmp_path / "results" / "full" / "trials"
    names = _names(folder)
    assert len(names) >= 2 and all(x.startswith("part-") for x in names)  # every part, still in place
    table = sweeper.load(folder)
    assert len(table) == 80 and not table.duplicated(["trial", "replicate"]).any()


def test_a_compaction_that_fails_otherwise_is_raised_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: Any, **_k: Any) -> None:
        raise ValueError("a bug in the compaction")

    monkeypatch.setattr(c, "compact_into", broken)
    folder = tmp_path / "trials"
    writer = t.TableWriter(folder, SCHEMA, flush_rows=10, flush_s=1e9, compact_rows=0)
    with pytest.raises(ValueError, match="a bug in the compaction"):  # by the next flush, or close()
        for i in range(30):
            writer.append([_row(i)])
        writer.close()
    assert set(_plain_trials(folder)) == set(range(10 * len(_names(folder))))  # the parts written, all
    assert all(x.startswith("part-") for x in _names(folder))


def _parts(folder: Path, rows: list[list[int]]) -> list[Path]:
    """Parts of the given trials (a trial in two parts is a rerun: its last row is the one kept)."""
    files = []
    for n, trials in enumerate(rows):
        files.append(folder / f"part-{n:06d}.parquet")
        atomic_write_table(files[-1], pa.Table.from_pylist([_row(i) for i in trials], schema=SCHEMA))
    return files


def _not_here(*_a: Any, **_k: Any) -> int:
    raise AssertionError("compacted in the driver")


@pytest.fixture
def compact_here(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """A compaction in this process (the driver) fails the test, one in a child does not (the child
    imports the real compact_into); the real one, for the test's own use."""
    real = c.compact_into
    monkeypatch.setattr(c, "compact_into", _not_here)
    return real


@pytest.fixture
def writer_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], t.TableWriter]:
    """A writer of parts of 10 rows that compacts from 20 rows, in a child from ``apart`` rows (the
    files themselves cost nothing), into ``tmp_path / "trials"``."""

    def make(apart: int) -> t.TableWriter:
        monkeypatch.setattr(c, "APART_ROWS", apart)
        monkeypatch.setattr(c, "FILE_ROWS", 0)
        return t.TableWriter(tmp_path / "trials", SCHEMA, flush_rows=10, flush_s=1e9, compact_rows=20)

    return make


def test_a_large_compaction_runs_in_a_child_python_and_writes_the_table_the_driver_would(
    tmp_path: Path, compact_here: Callable[..., int]
) -> None:
    folder = tmp_path / "trials"
    files = _parts(folder, [[0, 1, 2], [3, 1], [4, 5, 0]])
    assert compact_here(tmp_path / "here.parquet", folder, ("trial", "replicate"), files) == 6
    rows = c.compact_files(
        tmp_path / "apart.parquet",
        folder,
        ("trial", "replicate"),
        files,
        c.APART_ROWS + len(files) * c.FILE_ROWS,
    )
    import pyarrow.parquet as pq

    apart, here = pq.read_table(tmp_path / "apart.parquet"), pq.read_table(tmp_path / "here.parquet")
    assert apart.equals(here) and apart.column("trial").to_pylist() == [2, 3, 1, 4, 5, 0]
    assert rows == 6  # the child's count, as the driver's compact_into returns it
    # a small one stays in the driver (no child's start for a table of a few rows)
    with pytest.raises(AssertionError, match="compacted in the driver"):
        c.compact_files(tmp_path / "x.parquet", folder, ("trial", "replicate"), files, 8 + 3 * c.FILE_ROWS)


def test_a_compaction_child_that_fails_says_why_and_a_full_disk_stays_a_storage_error(
    tmp_path: Path,
) -> None:
    from sweeper.errors import StorageError, SweeperError

    folder = tmp_path / "trials"
    files = _parts(folder, [[0, 1], [2]])
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(StorageError) as no_room:  # where the compact file should go cannot be made
        c.compact_files(
            tmp_path / "a-file" / "c.parquet",
            folder,
            ("trial",),
            files,
            c.APART_ROWS + len(files) * c.FILE_ROWS,
        )
    assert "a-file" in str(no_room.value) and "Traceback" not in str(no_room.value)
    files[1].write_bytes(b"not parquet")
    with pytest.raises(SweeperError) as broken:
        c.compact_files(
            tmp_path / "c.parquet", folder, ("trial",), files, c.APART_ROWS + len(files) * c.FILE_ROWS
        )
    assert not isinstance(broken.value, StorageError)
    assert "failed in its process" in str(broken.value) and "part-000001.parquet" in str(broken.value)
    assert not (tmp_path / "c.parquet").exists()


@pytest.mark.usefixtures("compact_here")  # every compaction is a child's, even close()'s
def test_a_writer_whose_compactions_run_apart_keeps_every_row_once(
    tmp_path: Path, writer_apart: Callable[[int], t.TableWriter]
) -> None:
    folder, writer = tmp_path / "trials", writer_apart(1)
    for i in range(100):
        writer.append([_row(i)])
    writer.close()
    assert writer.compactions  # background ones, each in a child
    assert _names(folder) == ["compact-000009.parquet"]
    assert sorted(read_folder(folder).column("trial").to_pylist()) == list(range(100))


DRIVER = textwrap.dedent("""
    import json, os, signal, sys, threading
    import sweeper
    from sweeper.results import compaction as c, table as t

    # parts of 10 rows, a background compaction at every part after the first two
    t.TableWriter.__init__.__kwdefaults__.update(flush_rows=10, compact_rows=0)
    c.FILE_ROWS = 0
    real, mode = c._exchange, sys.argv[4]
    def exchange(a, b):
        if threading.current_thread().name != "sweeper-compaction" or b.name != "trials":
            return real(a, b)
        if mode == "after-swap":
            real(a, b)
        os.kill(os.getpid(), signal.SIGKILL)
    c._exchange = exchange
    spec = sweeper.load_spec(json.loads(sys.argv[1]), root=sys.argv[3])
    sweeper.launch(spec, results=sys.argv[2], backend="local", progress=False)
""")


@pytest.mark.parametrize("mode", ["before-swap", "after-swap"])
def test_a_driver_killed_in_a_periodic_compaction_leaves_a_whole_table_and_resumes_each_run_once(
    tmp_path: Path, mode: str
) -> None:
    import sweeper
    from tests.conftest import REPO, sweep_spec

    data = sweep_spec(experiment="periodic", search={"method": "random", "trials": 40, "seed": 4})
    results, root = tmp_path / "results", str(REPO / "tests")
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(data), str(results), root, mode],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=240,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    folder = results / "periodic"
    stage = folder / ".trials.compacting"
    assert stage.is_dir()  # killed with the compaction half done
    kinds = {p.name.split("-")[0] for p in stage.iterdir()}
    # before: the compact file (and the parts after it, linked); after: the old parts
    assert ("compact" in kinds) == (mode == "before-swap") and kinds <= {"compact", "part"}
    before = sweeper.load(folder)
    assert len(before) >= 20 and not before.duplicated(["trial", "replicate"]).any()
    plain = _plain_trials(folder / "trials")
    assert len(plain) == len(before)  # the same rows to a reader of every file, none twice
    spec = sweeper.load_spec(data, root=root)
    sweeper.launch(spec, results=results, backend="local", progress=False)
    after = sweeper.load(folder)
    assert len(after) == 80 and not after.duplicated(["trial", "replicate"]).any()
    kept = after.merge(before[["trial", "replicate", "started_at"]], on=["trial", "replicate"])
    assert len(kept) == len(before) and (kept["started_at_x"] == kept["started_at_y"]).all()  # not rerun
    assert not stage.exists()
    again = sweeper.launch(spec, results=results, backend="local", progress=False)
    assert again.stats.first_new is None and sweeper.load(folder).equals(after)


def test_a_compaction_goes_apart_by_the_rows_it_rewrites_the_compact_file_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_apart: Callable[[int], t.TableWriter]
) -> None:
    here, real = [], c.compact_into

    def counted(*a: Any, **k: Any) -> int:
        here.append(len(a[3]))
        return real(*a, **k)

    monkeypatch.setattr(c, "compact_into", counted)
    folder, writer = tmp_path / "trials", writer_apart(25)

    def unread(path: Path) -> int:
        raise AssertionError(f"{path}: its rows were just written, not to be read from its footer")

    monkeypatch.setattr(t, "_rows_of", unread)
    for i in range(100):
        writer.append([_row(i)])
        writer._wait()  # each compaction ends before the next part: the same ones every time
    writer.close()
    # at 20 rows (two parts) in the driver; then the compact file of 20 and parts of 20, 40 and 40,
    # and 80 and 20 at close(): 25 rows or more each time, so each in a child
    assert here == [2] and len(writer.compactions) == 3, (here, writer.compactions)
    assert sorted(read_folder(folder).column("trial").to_pylist()) == list(range(100))
