"""Writes that no reader sees half done: a temp file beside the target, fsynced, renamed over it.

Its own module because every writer of the results folder uses it (the trial table's parts and its
compaction, experiment.json, the report): one write seam, one place where a failure to write becomes
a :class:`~sweeper.errors.StorageError` that names the path and the system's reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.errors import StorageError

if TYPE_CHECKING:
    import pyarrow as pa


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[str]:
    """A temp path beside ``path``; once written it is fsynced and renamed over ``path``.

    Readers never see half a file, and a crash leaves at worst a hidden ``.tmp`` file behind.
    A failure to write (disk full, read-only folder, quota, file size limit) is a
    :class:`~sweeper.errors.StorageError` naming ``path`` and the system's reason.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp(path)
    except OSError as exc:
        raise StorageError(cannot_write(path, exc)) from None
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        raise StorageError(cannot_write(path, exc)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        raise


def cannot_write(path: Path, exc: OSError) -> str:
    """``cannot write PATH: No space left on device (ENOSPC)``: the path meant, the system's words."""
    import errno as codes

    code = exc.errno
    if code is None:  # pyarrow's OSError: "... [errno 28] No space left on device"
        found = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)
        code = int(found.group(1)) if found else None
    if code is None:
        return f"cannot write {path}: {exc}"
    return f"cannot write {path}: {os.strerror(code)} ({codes.errorcode.get(code, code)})"


def _new_temp(path: Path) -> str:
    """Create an empty, unique temp file beside ``path`` with mode 0666 less the umask.

    Not ``tempfile.mkstemp``: it makes 0600 files, and the results folder is meant to be read by
    colleagues like any other program's output.
    """
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return str(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with replacing(path) as tmp:
        Path(tmp).write_bytes(data)


def atomic_write_table(path: Path, table: pa.Table) -> None:
    import pyarrow.parquet as pq

    with replacing(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
