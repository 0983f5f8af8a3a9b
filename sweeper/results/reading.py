"""Reading a parts folder (the trial table, history, component items and links) as one table.

A folder holds at most one current ``compact-NNNNNN.parquet`` (every row of the parts numbered up to
NNNNNN) and the ``part-NNNNNN.parquet`` files after it; a later row for the same key replaces an
earlier one. The de-duplication lives here once, on the key columns alone, for the readers and for
the writer's compaction (:mod:`sweeper.results.compaction`), so both keep the same rows in the same order.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.schema import TRIAL_KEYS

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

PART_RE = re.compile(r"^(part|compact)-(\d{6})\.parquet$")
# The columns every trial part has, with their kind (from the one schema of the table).
KEY_COLUMNS = {n: "string" if t == "string" else "int" for n, t in TRIAL_KEYS if n != "seed"}


def table_files(folder: Path) -> tuple[Path | None, list[tuple[int, Path]]]:
    """The newest compact file and the part files after it, in order."""
    compact: tuple[int, Path] | None = None
    parts: list[tuple[int, Path]] = []
    if folder.is_dir():
        for p in folder.iterdir():
            m = PART_RE.match(p.name)
            if not m:
                continue
            n = int(m.group(2))
            if m.group(1) == "compact":
                if compact is None or n > compact[0]:
                    compact = (n, p)
            else:
                parts.append((n, p))
    upto = compact[0] if compact else -1
    return (compact[1] if compact else None), sorted(x for x in parts if x[0] > upto)


def file_list(folder: Path) -> list[Path]:
    """The files of the folder's table, in the order their rows were written."""
    compact, parts = table_files(folder)
    return ([compact] if compact else []) + [p for _, p in parts]


def read_folder(
    folder: Path,
    keys: tuple[str, ...] = ("trial", "replicate"),
    columns: Sequence[str] | None = None,
    *,
    ordered: bool = False,
) -> pa.Table:
    """Read a parts folder as one table; a later row for the same ``keys`` replaces an earlier one.
    ``columns``: only these (with ``keys``, they must include them). ``ordered``: rows sorted by
    ``keys`` (else in the order they were written).

    A file that vanishes between listing and reading was compacted meanwhile (the folder was
    swapped): the folder is listed again, a few times, before anything is called damaged.
    """
    for _ in range(5):
        try:
            return _read_once(folder, keys, columns, ordered)
        except FileNotFoundError:
            time.sleep(0.05)
    return _read_once(folder, keys, columns, ordered)


def _read_once(
    folder: Path, keys: tuple[str, ...], columns: Sequence[str] | None = None, ordered: bool = False
) -> pa.Table:
    import pyarrow as pa

    files = file_list(folder)
    tables = [_readable(f, folder, lambda f: read_file(f, columns)) for f in files]
    if not tables:
        return pa.table({})
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise SweeperError(clash(files, [t.schema for t in tables], folder)) from None
    if keys and all(k in table.column_names for k in keys) and (len(files) > 1 or ordered):
        keep = last_rows(table.select(list(keys)), ordered)
        if keep is not None:
            table = table.take(pa.array(keep))
    return table


def read_file(f: Path, columns: Sequence[str] | None = None) -> pa.Table:
    """One file, or those of ``columns`` it has. Not ``pq.read_table``: it goes through
    pyarrow.dataset, which imports pandas (0.7 s of a 1.8 s resume of 10^6 rows)."""
    import pyarrow.parquet as pq

    with pq.ParquetFile(f) as source:
        return source.read(columns=None if columns is None else list(columns))


def open_file(f: Path, folder: Path) -> pq.ParquetFile:
    """One file of the folder's table opened for reading in row groups (its errors as read_folder's)."""
    import pyarrow.parquet as pq

    return _readable(f, folder, pq.ParquetFile)


def _readable(f: Path, folder: Path, read: Any) -> Any:
    """``read(f)``, with a damaged file named: sweeper never writes partial files."""
    import pyarrow as pa

    try:
        return read(f)
    except FileNotFoundError:
        raise
    except (OSError, pa.ArrowInvalid) as exc:
        if not f.exists():
            raise FileNotFoundError(f) from None
        raise SweeperError(
            f"{f}: not a readable Parquet file ({exc}). Move it out of {folder} to read the rest; "
            "sweeper never writes partial files, so it was damaged or put there by something else."
        ) from None


def clash(files: list[Path], schemas: list[pa.Schema], folder: Path) -> str:
    """Name the file and column whose type differs from the first file's."""
    first = schemas[0]
    for f, schema in zip(files[1:], schemas[1:], strict=True):
        for col in schema:
            if col.name in first.names and first.field(col.name).type != col.type:
                return (
                    f"{f}: column {col.name!r} is {col.type} here but {first.field(col.name).type} in"
                    f" {files[0].name}, so the parts cannot be read as one table"
                    f"\n  fix: move the file that sweeper did not write out of {folder} (sweeper writes one"
                    " schema per experiment); the others are untouched"
                )
    return f"{folder}: its parts have columns of clashing types\n  fix: move foreign files out of {folder}"


def last_rows(keys: pa.Table, ordered: bool = False) -> Any:
    """The rows to keep of a table whose key columns are ``keys``: the last row of each key, in the
    order written (``ordered``: sorted by the keys), as a numpy index array; None to keep them all
    as they are."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    packed = _packed(keys)
    if packed is None:  # keys that are not small non-negative integers: Arrow groups them
        names = keys.column_names
        idx = pa.array(np.arange(keys.num_rows))
        grouped = keys.append_column("_i", idx).group_by(names).aggregate([("_i", "max")])
        keep = np.sort(grouped.column("_i_max").to_numpy())
        if ordered:
            keep = keep[pc.sort_indices(keys.take(keep), [(k, "ascending") for k in names]).to_numpy()]
        return keep
    # One stable sort of the keys packed in an int64 finds the last of each key (and the key order):
    # a tenth of Arrow's group_by at 10^6 rows here, and nothing at all to take when none repeats.
    order = np.argsort(packed, kind="stable")
    ranked = packed[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = ranked[1:] != ranked[:-1]
    if last.all():  # no key twice
        if not ordered or bool(np.all(packed[1:] > packed[:-1])):  # (and already in key order)
            return None
        return order
    return order[last] if ordered else np.sort(order[last])


def _packed(keys: pa.Table) -> Any:
    """The keys of each row as one int64 that sorts as they do, or None when they do not fit in one
    (a key that is not an integer column, has nulls or negative values, or too many bits in all)."""
    import numpy as np
    import pyarrow as pa

    columns = []
    for column in keys.columns:
        if not pa.types.is_integer(column.type) or column.null_count:
            return None
        values = column.to_numpy().astype(np.int64, copy=False)
        if len(values) and values.min() < 0:
            return None
        columns.append(values)
    widths = [int(v.max()).bit_length() if len(v) else 0 for v in columns]
    if sum(widths) > 62:
        return None
    packed = np.zeros(keys.num_rows, dtype=np.int64)
    for values, width in zip(columns, widths, strict=True):
        packed = (packed << width) | values
    return packed


def check_table(folder: Path) -> None:
    """Refuse a trial table with a part that is not a readable trial-table file; name the file.

    Reads only the footers, and never touches any file: the user moves the bad one away. Launch
    (resume), status, table and report all read the table through this, so they agree on it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    for f in file_list(folder):
        try:
            schema = pq.read_schema(f)
        except (OSError, pa.ArrowException) as exc:
            if not f.exists():
                continue  # compacted meanwhile: the reader lists the folder again
            raise SweeperError(
                f"{f}: not a readable Parquet file ({exc})\n  fix: move this one file out of {folder}"
                " (the others are untouched) and relaunch; its runs will be run again"
            ) from None
        names = set(schema.names)
        missing = [c for c in KEY_COLUMNS if c not in names]
        wrong = [
            c for c, kind in KEY_COLUMNS.items() if c in names and not _is_kind(schema.field(c).type, kind)
        ]
        if missing or wrong:
            what = (
                f"lacks the columns {', '.join(missing)}"
                if missing
                else f"has columns of the wrong type: {', '.join(wrong)}"
            )
            raise SweeperError(
                f"{f}: not a part of a sweeper trial table (it {what})\n  fix: move this one file out of"
                f" {folder} (the others are untouched) and relaunch"
            )


def _is_kind(dtype: pa.DataType, kind: str) -> bool:
    import pyarrow.types as t

    return bool(t.is_integer(dtype)) if kind == "int" else (t.is_string(dtype) or t.is_large_string(dtype))
