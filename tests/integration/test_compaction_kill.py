"""Compaction is atomic for every reader of trials/ as is, even under SIGKILL at its worst moment.

A writer subprocess is killed at the point where a compaction is dangerous; then pandas, pyarrow,
polars, DuckDB and sweeper.load each read the folder, and a relaunch (a new writer) tidies it up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sweeper.results import table as results_table

ROWS = 50

WRITER = textwrap.dedent("""
    import os, shutil, signal, sys
    from pathlib import Path
    import pyarrow as pa
    from sweeper.results import compaction as c, table as t

    folder, mode = Path(sys.argv[1]), sys.argv[2]
    schema = pa.schema(
        [("trial", pa.int64()), ("replicate", pa.int32()), ("status", pa.string()), ("v", pa.float64())]
    )
    w = t.TableWriter(folder, schema, flush_rows=10)

    def die(*_a, **_k):
        os.kill(os.getpid(), signal.SIGKILL)

    real_replace = os.replace
    if mode == "part-write":  # killed while a part is written: its temp file is left
        def replace(src, dst, *a, **k):
            if Path(dst).name == "part-000003.parquet":
                die()
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    for i in range(int(sys.argv[3])):
        w.append([{"trial": i, "replicate": 0, "status": "complete", "v": float(i)}])
    w.flush()
    if mode == "first-removal":  # the first part removed by a compaction, whatever the mechanism
        real_unlink, real_rmtree = os.unlink, shutil.rmtree
        def unlink(path, *a, **k):
            if "part-" in os.fspath(path):
                die()
            return real_unlink(path, *a, **k)
        def rmtree(path, *a, **k):
            p = Path(path)
            if p.is_dir() and any(c.name.startswith("part-") for c in p.iterdir()):
                die()
            return real_rmtree(path, *a, **k)
        os.unlink, shutil.rmtree = unlink, rmtree
    elif mode == "compact-write":  # the compact file written, not yet in place
        def replace(src, dst, *a, **k):
            if Path(dst).name.startswith("compact-"):
                die()
            return real_replace(src, dst, *a, **k)
        os.replace = replace
    elif mode == "before-swap":
        c._exchange = die
    elif mode == "mid-stream":  # the compact file half written (row groups of 4, killed at the 3rd part)
        import pyarrow.parquet as pq
        c.ROW_GROUP, real_iter, files = 4, pq.ParquetFile.iter_batches, []
        def iter_batches(self, *a, **k):
            files.append(1)
            if len(files) == 3:
                die()
            return real_iter(self, *a, **k)
        pq.ParquetFile.iter_batches = iter_batches
    w.close()
""")


def _kill_writer(folder: Path, mode: str, rows: int = ROWS) -> None:
    proc = subprocess.run([sys.executable, "-c", WRITER, str(folder), mode, str(rows)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def _counts(folder: Path) -> dict[str, int]:
    """Rows as each reader sees the folder, read as is."""
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow.dataset as ds

    return {
        "pandas": len(pd.read_parquet(folder)),
        "pyarrow": ds.dataset(folder, format="parquet").count_rows(),
        "polars": pl.read_parquet(f"{folder}/*.parquet").height,
        "duckdb": duckdb.sql(f"select count(*) from read_parquet('{folder}/*.parquet')").fetchall()[0][0],
        "sweeper": len(results_table.load(folder)),
    }


@pytest.mark.parametrize("mode", ["first-removal", "compact-write", "before-swap", "mid-stream"])
def test_a_kill_during_compaction_never_duplicates_rows_and_a_relaunch_tidies(
    tmp_path: Path, mode: str
) -> None:
    folder = tmp_path / "exp" / "trials"
    _kill_writer(folder, mode)
    if mode == "mid-stream":  # killed with the streamed file part-written beside the folder
        (left,) = (folder.parent / ".trials.compacting").iterdir()
        assert left.name.endswith(".tmp") and left.stat().st_size > 0
    assert set(_counts(folder).values()) == {ROWS}, _counts(folder)
    # a relaunch opens a writer on the folder: it finishes or undoes the interrupted compaction
    import pyarrow as pa

    schema = pa.schema(
        [("trial", pa.int64()), ("replicate", pa.int32()), ("status", pa.string()), ("v", pa.float64())]
    )
    writer = results_table.TableWriter(folder, schema)
    writer.close()
    assert set(_counts(folder).values()) == {ROWS}
    assert sorted(p.name for p in folder.iterdir()) == [f"compact-{_last_part(folder):06d}.parquet"]
    assert sorted(p.name for p in folder.parent.iterdir()) == ["trials"]  # no compaction leftovers


def _last_part(folder: Path) -> int:
    (only,) = folder.iterdir()
    return int(only.name.split("-")[1].split(".")[0])


def test_temp_files_of_a_killed_writer_are_removed_on_relaunch(tmp_path: Path) -> None:
    folder = tmp_path / "exp" / "trials"
    _kill_writer(folder, "part-write")
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    import pyarrow as pa

    schema = pa.schema(
        [("trial", pa.int64()), ("replicate", pa.int32()), ("status", pa.string()), ("v", pa.float64())]
    )
    results_table.TableWriter(folder, schema).close()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_load_during_a_compaction_reads_the_new_folder_not_a_damaged_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow as pa

    from sweeper.results import reading

    folder = tmp_path / "trials"
    schema = pa.schema(
        [("trial", pa.int64()), ("replicate", pa.int32()), ("status", pa.string()), ("v", pa.float64())]
    )
    writer = results_table.TableWriter(folder, schema, flush_rows=5)
    for i in range(20):
        writer.append([{"trial": i, "replicate": 0, "status": "complete", "v": float(i)}])
    writer.flush()
    real_read = reading.read_file
    raced: list[bool] = []

    def read_while_compacting(path: Path, columns: object) -> pa.Table:
        if not raced:  # the reader has listed the parts; the compaction lands now
            raced.append(True)
            writer.close()
        return real_read(path, columns)  # type: ignore[arg-type]

    monkeypatch.setattr(reading, "read_file", read_while_compacting)
    table = results_table.load(folder)
    assert raced and sorted(table["trial"]) == list(range(20))


DRIVER = textwrap.dedent("""
    import json, os, signal, sys
    import pyarrow.parquet as pq
    import sweeper
    from sweeper.results import compaction as c, table as t

    # parts of 10 rows, row groups of 8: the final compaction streams several files
    t.TableWriter.__init__.__kwdefaults__["flush_rows"] = 10
    c.ROW_GROUP, real_iter, files = 8, pq.ParquetFile.iter_batches, []
    def iter_batches(self, *a, **k):
        files.append(1)
        if len(files) == 3:  # two files streamed into the compact file, then SIGKILL
            os.kill(os.getpid(), signal.SIGKILL)
        return real_iter(self, *a, **k)
    pq.ParquetFile.iter_batches = iter_batches
    spec = sweeper.load_spec(json.loads(sys.argv[1]), root=sys.argv[3])
    sweeper.launch(spec, results=sys.argv[2], backend="local", progress=False)
""")


def test_a_driver_killed_in_its_streamed_compaction_resumes_without_rerunning_and_again_idempotently(
    tmp_path: Path,
) -> None:
    import json

    import sweeper
    from tests.conftest import REPO, sweep_spec

    data = sweep_spec(experiment="stream", search={"method": "random", "trials": 40, "seed": 3})
    results, root = tmp_path / "results", str(REPO / "tests")
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(data), str(results), root],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    folder = results / "stream"
    assert (folder / ".trials.compacting").is_dir()  # killed mid-compaction, parts still in place
    before = sweeper.load(folder)
    assert len(before) == 80 and not before.duplicated(["trial", "replicate"]).any()
    spec = sweeper.load_spec(data, root=root)
    first = sweeper.launch(spec, results=results, backend="local", progress=False)
    assert first.stats.first_new is None  # every run was recorded: nothing ran again
    after = sweeper.load(folder)
    assert after.equals(before)
    (only,) = (folder / "trials").iterdir()
    assert only.name.startswith("compact-") and not (folder / ".trials.compacting").exists()
    second = sweeper.launch(spec, results=results, backend="local", progress=False)
    assert second.stats.first_new is None and sweeper.load(folder).equals(before)
    assert len(list((folder / "trials").iterdir())) == 1
