"""The trial table's compaction: when to fold the parts into one compact file, how it is written, and
the swap that puts it in place without any reader seeing both.

Its own module because it is the one part of the writer that must be right under a kill at any moment
and that reads a table the size of the sweep: :class:`~sweeper.results.table.TableWriter` (the part
writes, ``close()``, the background thread) only decides when and calls in here.

``close()`` compacts the parts into ``trials/compact-NNNNNN.parquet``, which holds every row of the
parts numbered up to NNNNNN. The compact file is written into a hidden sibling folder
(``.trials.compacting/``) which is then swapped with ``trials/`` in one atomic rename
(``renameat2(RENAME_EXCHANGE)``), so any reader of ``trials/`` (pandas, pyarrow, polars, DuckDB) sees
either the parts or the compact file, never both; the old parts, now in the sibling, are deleted after.
While the sweep runs, the writer compacts the same way in a background thread when the parts pile up
(see :func:`due`); parts written meanwhile are hard-linked into the sibling just before the swap
(:func:`swap_in`), under the lock every part write takes, so both sides of the swap hold them. A large
compaction runs in a child Python (:func:`compact_files`), so its buffers never join the driver's.
A kill at any point leaves a complete, duplicate-free ``trials/``; the next writer of the folder
deletes a leftover sibling (:func:`tidy`: an unfinished compaction, or the old parts of a finished
one). Where the file system cannot swap folders, the parts are simply left as they are.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.errors import StorageError, SweeperError
from sweeper.results.atomic import fsync_dir, replacing
from sweeper.results.reading import clash, file_list, last_rows, open_file, table_files

if TYPE_CHECKING:
    from threading import Lock

    import pyarrow as pa


# What opening one more file costs a reader or a compaction, in rows read (footer, schema, row group
# set-up): a part of one row is not free, so a slow sweep's many small parts are compacted too.
FILE_ROWS = 1000


def due(part_cost: int, compact_cost: int, compact_rows: int) -> bool:
    """Whether a writer whose parts since its compact file cost ``part_cost`` (in rows, see
    :data:`FILE_ROWS`) and whose compact file costs ``compact_cost`` compacts now.

    Geometric: compact when the parts since the compact file cost at least as much as it
    (and ``compact_rows``). A compaction then rewrites at most twice the cost of the parts it
    folds in, each part is folded in once, so all of them together rewrite at most twice what was
    written; a million rows in parts of 2,000 take about seven, the last at ~760k rows, and a
    reader opens the compact file and at most about half the table's cost in parts."""
    return part_cost >= max(compact_cost, compact_rows)


def swap_in(folder: Path, lock: Lock, write: Callable[[Path], int], number: int) -> int | None:
    """Put the file ``write`` makes as ``compact-<number>`` in place of ``folder``'s files up to
    part ``number`` in one atomic swap, the parts after it kept (linked into the new folder, under
    ``lock``, which every part write holds); the rows ``write`` says it wrote, or None (nothing
    changed) where the file system cannot swap folders."""
    stage = _stage(folder)
    shutil.rmtree(stage, ignore_errors=True)
    try:
        stage.mkdir()
        rows = write(stage / f"compact-{number:06d}.parquet")
        with lock:
            for n, part in table_files(folder)[1]:
                if n > number:
                    os.link(part, stage / part.name)
            fsync_dir(stage)
            swapped = _exchange(stage, folder)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if swapped:
        fsync_dir(folder.parent)
    shutil.rmtree(stage, ignore_errors=True)  # the old files, or the unused compact file
    return rows if swapped else None


# From this many rows a compaction runs in a child Python: its buffers
# (row groups of ROW_GROUP rows read and written, the codecs' state) then stay out of a driver that
# lives for the whole sweep. In the driver they raised its peak at a million trials from 229 to 382
# MiB (bench/scale.py, workload 3); a smaller table is compacted here, sparing the child's start.
APART_ROWS = 65_536
_NO_ROOM = 3  # a compaction child's exit status when its disk is full (the reason on its stderr)


def compact_files(path: Path, folder: Path, keys: tuple[str, ...], files: list[Path], cost: int) -> int:
    """:func:`compact_into` for ``files`` (costing ``cost``, as TableWriter counts): here, or in a
    child Python from :data:`APART_ROWS` rows on (here too where no child can start). A child's lack
    of room is a StorageError, as it would be here; anything else it hits, a SweeperError with its
    traceback. Returns the rows written."""
    import subprocess

    if cost - FILE_ROWS * len(files) < APART_ROWS:
        return compact_into(path, folder, keys, files)
    job = {"path": str(path), "folder": str(folder), "keys": keys, "files": [str(f) for f in files]}
    try:
        child = subprocess.run(
            [sys.executable, "-c", "from sweeper.results.compaction import _compact_job; _compact_job()"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
        )
    except OSError:  # no process to spare (or no interpreter to start): the driver does it
        return compact_into(path, folder, keys, files)
    if child.returncode == _NO_ROOM:
        raise StorageError(child.stderr.strip())
    if child.returncode:
        raise SweeperError(f"{folder}: compacting the table failed in its process:\n{child.stderr.strip()}")
    return int(child.stdout.split()[-1])  # the last word: anything the child's imports print comes first


def _compact_job() -> None:
    """A compaction child's whole work: the job on stdin, the outcome in the exit status and, when it
    wrote the file, the rows it wrote as the last word on stdout."""
    job = json.loads(sys.stdin.read())
    files = [Path(f) for f in job["files"]]
    try:
        rows = compact_into(Path(job["path"]), Path(job["folder"]), tuple(job["keys"]), files)
    except (OSError, StorageError) as exc:
        print(exc, file=sys.stderr)
        sys.exit(_NO_ROOM)
    print(rows)


# Rows per row group of a compact file: the compaction holds about one of them (and the keys) at a
# time, and a later compaction or reader can read the file a row group at a time.
ROW_GROUP = 65_536


def compact_into(path: Path, folder: Path, keys: tuple[str, ...], files: list[Path] | None = None) -> int:
    """Write the folder's table (or that of its ``files``, listed before), as :func:`read_folder` reads
    it, to ``path`` (atomically), streamed:
    the last row of each key is found from the key columns alone, then the files are copied a row
    group at a time, so the driver never holds the table (a million rows took 1.8x the sweep's
    memory when read whole). Read on this one thread: Arrow's reader threads each keep memory resident
    (a million rows with periodic compactions: peak 224-250 MiB with them, 197-205 without, 181 with
    no periodic compaction), and a compaction in the background needs no parallel decoding.

    Returns the rows written, so that the writer knows the compact file's cost without its footer."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = file_list(folder) if files is None else files
    schemas, key_tables = [], []
    for f in files:  # one file open at a time: a million-trial sweep leaves hundreds of parts
        with open_file(f, folder) as source:
            schemas.append(source.schema_arrow)
            if keys:
                names = [k for k in keys if k in source.schema_arrow.names]
                key_tables.append(source.read(columns=names, use_threads=False))
    try:
        schema = pa.unify_schemas(schemas, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise SweeperError(clash(files, schemas, folder)) from None
    keep = None
    if keys and all(k in schema.names for k in keys) and len(files) > 1:
        key_schema = pa.schema([schema.field(k) for k in keys])
        keep = last_rows(pa.concat_tables([_conform(t, key_schema) for t in key_tables]))
    del key_tables
    with replacing(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as out:
        waiting: list[pa.Table] = []
        offset = size = written = total = 0
        for f in files:
            with open_file(f, folder) as source:
                for batch in source.iter_batches(batch_size=ROW_GROUP, use_threads=False):
                    rows = pa.Table.from_batches([batch])
                    if keep is not None:
                        lo, hi = np.searchsorted(keep, [offset, offset + rows.num_rows])
                        rows = rows.take(pa.array(keep[lo:hi] - offset))
                    offset += batch.num_rows
                    waiting.append(_conform(rows, schema))
                    size, total = size + rows.num_rows, total + rows.num_rows
                    if size >= ROW_GROUP:  # whole row groups out, the rest waits for the next rows
                        rows, full = pa.concat_tables(waiting), size - size % ROW_GROUP
                        out.write_table(rows.slice(0, full), row_group_size=ROW_GROUP)
                        waiting, size, written = [rows.slice(full)], size - full, written + 1
        if size or not written:  # (a table with no rows still has its schema)
            out.write_table(pa.concat_tables(waiting) if waiting else schema.empty_table())
    return total


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in its order: a column it lacks is null (as concat_tables'
    default promotion makes it)."""
    import pyarrow as pa

    if table.schema.equals(schema):
        return table
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def _stage(folder: Path) -> Path:
    """Where a compaction is prepared: hidden, beside the folder, so no reader of it looks there."""
    return folder.with_name(f".{folder.name}.compacting")


def tidy(folder: Path) -> None:
    """Before writing to a folder (its driver holds the lock): finish or undo an interrupted
    compaction, and remove temp files a killed writer left."""
    shutil.rmtree(_stage(folder), ignore_errors=True)  # either half is disposable: the folder is whole
    for p in folder.glob(".*.tmp"):
        p.unlink(missing_ok=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic rename; False where the system or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:  # glibc < 2.28, musl
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this file system cannot swap
        return False
    raise OSError(errno, os.strerror(errno), str(b))
