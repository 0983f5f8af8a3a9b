"""The results folder: the Parquet trial table, streamed in atomic parts, and experiment.json.

Its own module because the trial table has one writer (:class:`TableWriter`, whose parts a reader can
read mid-sweep) and one way to be read back (:func:`load`, the folder checks, the experiment record).

Layout (a public contract, see README): ``trials/part-NNNNNN.parquet`` files are appended while a sweep
runs; ``close()`` compacts them into ``trials/compact-NNNNNN.parquet``, which holds every row of the
parts numbered up to NNNNNN. The writer decides when to compact (in a background thread while the
sweep runs, once more in ``close()``); how, and why no reader ever sees the parts and the compact file
of the same rows, is :mod:`sweeper.results.compaction`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import StorageError, SweeperError, option
from sweeper.results import compaction
from sweeper.results.atomic import atomic_write_bytes, atomic_write_table, cannot_write
from sweeper.results.reading import PART_RE, check_table, file_list, read_folder, table_files
from sweeper.results.schema import TRIAL_KEYS, TRIAL_RUN, TRIAL_STAGE

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from sweeper.spec.experiment import Experiment, Variable

TRIALS = "trials"


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode())


def read_json(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return data
    except (OSError, ValueError) as exc:
        raise SweeperError(f"{path}: cannot read ({exc})") from None


def variable_type(var: Variable) -> pa.DataType:
    """Arrow type of a variable's column: fixed by the spec so that every part has one schema."""
    import pyarrow as pa

    if var.kind == "int":
        return pa.int64()
    if var.kind == "float":
        return pa.float64()
    values = var.choices if var.kind == "choice" else (var.value,)
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def trial_schema(spec: Experiment) -> pa.Schema:
    import pyarrow as pa

    from sweeper.search.seeds import seed_column

    fields = [
        *arrow_fields(TRIAL_KEYS),
        *arrow_fields(TRIAL_STAGE),
        *(pa.field(seed_column(f.name), pa.int64()) for f in spec.factors),  # data_seed, init_seed, ...
        *(pa.field(v.name, variable_type(v)) for v in spec.variables),
        *(pa.field(m.name, pa.float64()) for m in spec.metrics),
        *arrow_fields(TRIAL_RUN),
    ]
    return pa.schema(fields)


def arrow_fields(columns: Sequence[tuple[str, str]]) -> list[pa.Field]:
    """Arrow fields of ``sweeper.results.schema`` columns (timestamps are UTC microseconds)."""
    import pyarrow as pa

    types = {"timestamp": pa.timestamp("us", tz="UTC")}
    return [pa.field(name, types.get(kind) or pa.type_for_alias(kind)) for name, kind in columns]


class TableWriter:
    """Appends rows to a Parquet dataset folder in atomic parts, compacts them in the background as
    they pile up, and once more in ``close()``.

    Rows are buffered and written when ``flush_rows`` rows are waiting or ``flush_s`` seconds have
    passed, so the table is readable mid-sweep and the driver holds at most one buffer of rows.
    """

    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        *,
        flush_rows: int = 2000,
        flush_s: float = 1.0,
        keys: tuple[str, ...] = ("trial", "replicate"),
        compact_rows: int = 50_000,
    ):
        import threading

        import pyarrow as pa
        import pyarrow.parquet

        # The first from_pylist imports pandas (1-5 s on a busy machine): start it now, beside the
        # first runs, not at the first flush (where it stalls the driver and starves the workers),
        # nor here (where it delays the first run). A flush that comes first waits for the import.
        threading.Thread(
            target=pa.Table.from_pylist, args=([],), kwargs={"schema": schema}, daemon=True
        ).start()

        self.folder, self.schema, self.keys = folder, schema, keys  # keys: see read_folder
        self.flush_rows, self.flush_s, self.compact_rows = flush_rows, flush_s, compact_rows
        self.folder.mkdir(parents=True, exist_ok=True)
        compaction.tidy(folder)
        take_in(folder)
        self._next = _next_part(folder)
        self._rows: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self.set_aside: tuple[Path, int] | None = None  # (file, rows) a failed close() put aside
        self.unsaved = 0  # rows that a failed close() could write nowhere
        # called before each part is written: what the rows refer to (their runs' component links)
        # lands first, so a kill between the two leaves no row without it
        self.before_flush: Callable[[], None] | None = None
        # The background compaction: the lock is held by each part write and by the swap (linking
        # the newer parts into the stage, then the exchange), so no part lands between the two.
        self._lock = threading.Lock()
        self._compacting: threading.Thread | None = None
        self._failure: BaseException | None = None  # what the last one raised, for the main thread
        self.compactions: list[float] = []  # seconds each background compaction took
        compact, parts = table_files(folder)
        # Files' costs in rows (see compaction.due); parts already there count as files only: their
        # rows would cost a footer read each, on the way to the first run.
        self._compact_cost = (compaction.FILE_ROWS + _rows_of(compact)) if compact else 0
        self._part_cost = compaction.FILE_ROWS * len(parts)
        self._swappable = True

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self._rows.extend(rows)  # type: ignore[arg-type]
        self.tick()

    def tick(self) -> None:
        """Write the waiting rows once ``flush_rows`` wait or ``flush_s`` has passed since the last write.

        The driver calls it between results too: rows that came in a burst just after a write would
        otherwise wait in memory, unseen by readers and lost to a SIGKILL, until the next run ends."""
        waited = time.monotonic() - self._last_flush >= self.flush_s
        if len(self._rows) >= self.flush_rows or (self._rows and waited):
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as a part; start a background compaction when one is due."""
        self._write_part()
        self._reap()
        if self._compacting is None and self._due():
            self._start_compaction()

    def _write_part(self) -> None:
        self._last_flush = time.monotonic()
        if not self._rows:
            return
        if self.before_flush is not None:
            self.before_flush()  # on a failure the rows stay buffered, as on a failure to write them
        import pyarrow as pa

        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        with self._lock:  # not while a compaction swaps: the part would leave with the old parts
            atomic_write_table(self.folder / f"part-{self._next:06d}.parquet", table)
            self._next += 1
            self._part_cost += compaction.FILE_ROWS + table.num_rows
        self._rows = []

    def _due(self) -> bool:
        return self._swappable and compaction.due(self._part_cost, self._compact_cost, self.compact_rows)

    def _start_compaction(self) -> None:
        import threading

        compact, parts = table_files(self.folder)  # only this thread writes parts: these stay put
        if len(parts) < 2 and compact is None:
            return
        files, number, cost = (
            ([compact] if compact else []) + [p for _, p in parts],
            parts[-1][0],
            self._part_cost,
        )
        self._compacting = threading.Thread(
            target=self._compact, args=(files, number, cost), name="sweeper-compaction", daemon=True
        )
        self._compacting.start()

    def _compact(self, files: list[Path], number: int, cost: int) -> None:
        """The background compaction of ``files`` (the table up to part ``number``, costing ``cost``
        in parts). No room (disk full, quota) leaves the parts as they are, still correct, and
        waits for twice the parts before trying again; anything else is raised by the next flush."""
        began = time.monotonic()
        try:
            rows = self._swap_in(
                lambda path: compaction.compact_files(
                    path, self.folder, self.keys, files, self._compact_cost + cost
                ),
                number,
            )
        except (OSError, StorageError) as exc:
            # on stderr, as sweeper's other warnings: a logger can be disabled by any library's
            # logging set-up (alembic's fileConfig, a dictConfig), and this one must be seen
            print(
                f"sweeper: {self.folder}: compaction put off, the parts stay as they are ({exc})",
                file=sys.stderr,
            )
            self._compact_cost = max(self._compact_cost, 2 * cost)
        except Exception as exc:
            self._failure = exc
        else:
            if rows is None:
                self._swappable = False
                return
            with self._lock:
                self._compact_cost, self._part_cost = compaction.FILE_ROWS + rows, self._part_cost - cost
            self.compactions.append(time.monotonic() - began)

    def _reap(self) -> None:
        """Collect a finished background compaction; raise what it raised (not a lack of room)."""
        if self._compacting is not None and not self._compacting.is_alive():
            self._compacting.join()
            self._compacting = None
            failure, self._failure = self._failure, None
            if failure is not None:
                raise failure

    def _wait(self) -> None:
        if self._compacting is not None:
            self._compacting.join()
        self._reap()

    def close(self) -> None:
        """Flush, wait for a compaction in flight, then fold every part into one compact file,
        swapped in with one rename.

        When the folder cannot be written, the rows still buffered are put aside (``set_aside``,
        see :func:`take_in`) where they can be, and the StorageError is raised.
        """
        try:
            self._write_part()
        except StorageError:
            self._put_aside()
            raise
        finally:
            if self._compacting is not None:
                self._compacting.join()
        self._reap()
        compact, parts = table_files(self.folder)
        if not parts or (compact is None and len(parts) == 1):
            return
        files, cost = file_list(self.folder), self._compact_cost + self._part_cost
        with contextlib.suppress(OSError, StorageError):  # no room to compact: the parts stay, still correct
            self._swap_in(
                lambda path: compaction.compact_files(path, self.folder, self.keys, files, cost), parts[-1][0]
            )

    def rewrite(self, table: pa.Table) -> None:
        """Make ``table`` the folder's whole content (rows no longer wanted are dropped): one compact
        file numbered after every part, swapped in like a compaction; where folders cannot be
        swapped, written beside the parts (every reader of ours then reads it alone) before they
        are removed."""
        self._write_part()
        self._wait()
        number, self._next = self._next, self._next + 1

        def write(path: Path) -> int:
            atomic_write_table(path, table)
            return int(table.num_rows)

        try:
            if self._swap_in(write, number) is not None:
                self._compact_cost, self._part_cost = compaction.FILE_ROWS + table.num_rows, 0
                return
            atomic_write_table(self.folder / f"compact-{number:06d}.parquet", table)
            for p in self.folder.iterdir():
                m = PART_RE.match(p.name)
                if m and int(m.group(2)) < number:
                    p.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(cannot_write(self.folder, exc)) from None

    def _swap_in(self, write: Callable[[Path], int], number: int) -> int | None:
        return compaction.swap_in(self.folder, self._lock, write, number)

    def _put_aside(self) -> None:
        """Write the buffered rows beside the folder (it may be the folder alone that is read-only);
        rows that cannot go there either are counted in ``unsaved`` (they run again on resume)."""
        import pyarrow as pa

        path = aside_folder(self.folder) / f"part-{self._next:06d}.parquet"
        try:
            atomic_write_table(path, pa.Table.from_pylist(self._rows, schema=self.schema))
        except StorageError:
            self.unsaved = len(self._rows)
        else:
            self.set_aside = (path, len(self._rows))
        self._rows = []


def _rows_of(path: Path) -> int:
    """Rows of a Parquet file, from its footer; 0 for one that cannot be read (the readers name it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowInvalid):
        return 0


def _next_part(folder: Path) -> int:
    compact, parts = table_files(folder)
    last = parts[-1][0] if parts else (int(PART_RE.match(compact.name).group(2)) if compact else -1)  # type: ignore[union-attr]
    return last + 1


def aside_folder(folder: Path) -> Path:
    """Where a writer that could not write ``folder`` puts its last rows: ``trials.unsaved/``."""
    return folder.with_name(f"{folder.name}.unsaved")


def take_in(folder: Path) -> int:
    """Move the parts a failed writer put aside (``<folder>.unsaved/``) into ``folder``, after its own
    parts; the number of files moved. Each move is one rename, so a reader sees a part whole or not
    at all. Called by the next writer of the folder (and by resume before it reads the table)."""
    aside = aside_folder(folder)
    if not aside.is_dir():
        return 0
    moved = 0
    for p in sorted(aside.glob("part-*.parquet")):
        target = folder / f"part-{_next_part(folder):06d}.parquet"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(p, target)
        except OSError as exc:
            raise StorageError(
                f"{cannot_write(target, exc)}, so the runs put aside in {aside} cannot be taken in"
                f"\n  fix: make {folder} writable (or free space), then launch again"
            ) from None
        moved += 1
    for p in aside.glob(".*.tmp"):
        p.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        aside.rmdir()
    return moved


def load(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The trial table of a results folder (``DIR`` or ``DIR/trials``) as a pandas DataFrame.

    One row per replicate, sorted by trial then replicate. ``path`` may be a URI (``s3://...``): its
    table is read from a local copy that is removed before this returns.
    """
    from sweeper.results.store import readable

    path = os.fspath(path)  # a launch's result stands for its folder
    with readable(path) as folder:
        if (folder / TRIALS).is_dir():
            folder = folder / TRIALS
        if not folder.is_dir():
            check_results_folder(path)  # names the folder meant, when this is not one
            raise SweeperError(f"{path}: no trial table here (expected a results folder with {TRIALS}/)")
        import pandas as pd
        import pyarrow as pa

        check_table(folder)
        # Nullable integers: an int variable that is inactive in some trials stays int, not float.
        table = read_folder(folder, ordered=True)  # sorted by trial, replicate (in Arrow: 0.4 s of 3 saved)
        return table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


EXPERIMENT_JSON = "experiment.json"


def check_results_folder(path: str | Path) -> Path:
    """``path`` when it holds an ``experiment.json``; else an error whose fix names the folder meant
    (a sweep file's results folder, ``results/NAME`` for a bare name, a close name under ``results/``)."""
    folder = Path(path)
    if (folder / EXPERIMENT_JSON).is_file():
        return folder
    raise SweeperError(f"{path}: not a results folder (no {EXPERIMENT_JSON})\n  fix: {_folder_hint(folder)}")


def _folder_hint(folder: Path) -> str:
    import difflib

    root = Path("results").resolve()
    if folder.is_file():
        name = _experiment_name(folder)
        if name:
            meant = root / name
            where = "" if (meant / EXPERIMENT_JSON).is_file() else " (launched with --results elsewhere?)"
            return f"{folder} is a sweep file; did you mean {meant}?{where}"
    known = sorted(p.parent.name for p in root.glob(f"*/{EXPERIMENT_JSON}")) if root.is_dir() else []
    if folder.name in known and (root / folder.name).resolve() != folder.resolve():
        return f"did you mean {root / folder.name}?"
    close = difflib.get_close_matches(folder.name, known, n=1)
    if close:
        return f"did you mean {root / close[0]}?"
    example = root / (known[0] if known else "quickstart")
    return f"pass the experiment's results folder, RESULTS/<experiment> (e.g. {example})"


def _experiment_name(path: Path) -> str | None:
    """The ``experiment:`` of a sweep file, or None when it is not one."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    name = data.get("experiment") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name and "/" not in name and name != ".." else None


def read_spec(folder: str | Path) -> Experiment:
    """The experiment a results folder was run with, re-validated from its ``experiment.json``."""
    from sweeper.spec.model import parse_spec

    path = check_results_folder(folder) / EXPERIMENT_JSON
    data = read_record(path)
    return parse_spec(data["spec"], source_name=str(path), root=str(data.get("root", ".")))


def read_record(path: Path) -> dict[str, Any]:
    """``experiment.json`` as a dict, refused with a fix when it is JSON of another shape."""
    data: Any = read_json(path)
    what = (
        "not a JSON object"
        if not isinstance(data, dict)
        else "no 'spec' (the sweep it ran)"
        if not isinstance(data.get("spec"), dict)
        else ""
    )
    if what:
        raise SweeperError(
            f"{path}: not an experiment record ({what})"
            f"\n  fix: restore it from a backup, or relaunch with {option('fresh')} to move"
            f" {path.parent} aside and start over (nothing is deleted)"
        )
    return data  # type: ignore[no-any-return]
