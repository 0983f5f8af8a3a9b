"""Trial components: datasets, checkpoints, models, jobs and metadata records, content-hashed (sha256)
and linked to the trials that use them (role ``input``) or make them (role ``output``).

Layout under ``<results>/<experiment>/components/`` (a public contract):

- ``items/`` Parquet: ``id``, ``kind``, ``name``, ``uri``, ``sha256``, ``bytes``, ``created_at``; one row
  per component. The id derives from kind, name and content, so the same file logged twice is one
  component, and a component shared by many trials is stored once.
- ``links/`` Parquet: ``id``, ``trial``, ``replicate`` (null when the whole trial uses it), ``role``.
  A run's links are written before the trial-table part that holds its row, so every recorded row
  has its links whenever the driver dies; a resume drops the links of runs the table never
  recorded (they run again and link afresh) and relinks a recorded trial's missing inputs.
- ``inputs.json``: the declared inputs' hashes. A later launch (a resume) that finds different content
  refuses to run, since the finished trials were made with the old data.

Declared components are hashed once on the driver and linked to every trial; a declared ``job`` runs
once before the trials, its output folder is ``artifacts/jobs/<name>/`` and its path is handed to
every run. Runs log outputs into their own ``artifacts/trial-N/rep-R/`` folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.results.reading import read_folder
from sweeper.results.schema import COMPONENT_KINDS
from sweeper.results.table import TRIALS, TableWriter, check_results_folder

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


COMPONENTS = "components"
CHUNK = 1 << 20
LINK_KEYS = ("id", "trial", "replicate", "role")  # a link written twice (a rerun's inputs) is one


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    kind: str
    name: str
    uri: str
    sha256: str
    bytes: int


def hash_path(path: Path) -> tuple[str, int]:
    """sha256 and size of a file; of a folder, a sha256 over its files' relative paths and hashes."""
    if path.is_file():
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size
    if path.is_dir():
        digest = hashlib.sha256()
        size = 0
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            sha, n = hash_path(f)
            digest.update(f"{f.relative_to(path).as_posix()}\0{sha}\n".encode())
            size += n
        return digest.hexdigest(), size
    raise FileNotFoundError(path)


def record(name: str, kind: str, uri: str, sha256: str, size: int) -> Record:
    cid = hashlib.sha256(f"{kind}\0{name}\0{sha256}".encode()).hexdigest()[:16]
    return Record(cid, kind, name, uri, sha256, size)


def output_component(name: str, path: Path, kind: str, artifact_dir: Path) -> Record:
    """Hash a run's output; a relative path is taken inside the artifact folder, and a path outside
    it is copied in first, so the results folder holds what it lists."""
    if kind not in COMPONENT_KINDS:
        kinds = ", ".join(COMPONENT_KINDS)
        raise ValueError(f"log_component(kind={kind!r}): unknown kind\n  fix: use one of {kinds}")
    if not name or not isinstance(name, str):
        raise ValueError("log_component(name=...): give the component a name, e.g. 'model'")
    src = path if path.is_absolute() else artifact_dir / path
    if not src.exists():
        raise FileNotFoundError(
            f"log_component({name!r}, {str(path)!r}): no such file or folder {src}"
            "\n  fix: write it first (relative paths are inside trial.artifact_dir)"
        )
    src = src.resolve()
    home = artifact_dir.resolve()
    if not src.is_relative_to(home):
        dst = home / src.name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
        src = dst
    sha, size = hash_path(src)
    return record(name, kind, src.as_uri(), sha, size)


def item_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("kind", pa.string()),
            pa.field("name", pa.string()),
            pa.field("uri", pa.string()),
            pa.field("sha256", pa.string()),
            pa.field("bytes", pa.int64()),
            pa.field("created_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def link_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("trial", pa.int64()),
            pa.field("replicate", pa.int32()),
            pa.field("role", pa.string()),
        ]
    )


class ComponentWriter:
    """Streams component rows and trial links; the declared inputs are written once, up front.

    Made by the driver before its first run; on a resume it first settles the links with the
    trial table (:meth:`_settle`)."""

    def __init__(self, folder: Path, inputs: Sequence[Record]):
        base = Path(folder) / COMPONENTS
        resuming = (base / "links").is_dir()
        self.items = TableWriter(base / "items", item_schema(), keys=("id",))
        self.links = TableWriter(base / "links", link_schema(), keys=LINK_KEYS)
        self._inputs = [r.id for r in inputs]
        self._seen: set[str] = set()
        if resuming:
            self._settle(Path(folder) / TRIALS)
        self._add(inputs)

    def _settle(self, trials: Path) -> None:
        """Make the links agree with what the trial table records: drop output links of runs it has
        no row for (a driver killed between the two writes; those runs run again) and the items
        only they named, and link every recorded trial to the declared inputs it lacks."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        keys = pa.schema([pa.field("trial", pa.int64()), pa.field("replicate", pa.int32())])
        rows = read_folder(trials, columns=keys.names) if trials.is_dir() else keys.empty_table()
        runs = rows.select(keys.names).cast(keys) if rows.num_rows else keys.empty_table()
        links = read_folder(self.links.folder, LINK_KEYS)
        links = links.cast(link_schema()) if links.num_rows else link_schema().empty_table()
        out = links.filter(pc.equal(links["role"], "output"))
        out = out.join(runs, keys=["trial", "replicate"], join_type="left semi")
        trials_run = pa.table({"trial": pc.unique(runs["trial"])})
        ins = links.filter(pc.equal(links["role"], "input"))
        ins = ins.join(trials_run, keys="trial", join_type="left semi")
        n = trials_run.num_rows
        wanted = pa.table(
            {
                "id": pa.array(np.repeat(np.array(self._inputs, dtype=object), n), pa.string()),
                "trial": pa.array(np.tile(trials_run["trial"].to_numpy(), len(self._inputs)), pa.int64()),
                "replicate": pa.nulls(n * len(self._inputs), pa.int32()),
                "role": pa.array(["input"] * (n * len(self._inputs)), pa.string()),
            }
        )
        new = wanted.join(ins.select(["id", "trial"]), keys=["id", "trial"], join_type="left anti")
        if out.num_rows + ins.num_rows == links.num_rows and new.num_rows == 0:
            return
        kept = pa.concat_tables([out, ins, new.select(link_schema().names).cast(link_schema())])
        self.links.rewrite(kept)
        items = read_folder(self.items.folder, ("id",))
        if items.num_rows:
            named = pa.concat_arrays([kept["id"].combine_chunks(), pa.array(self._inputs, pa.string())])
            used = items.filter(pc.is_in(items["id"], value_set=named))
            if used.num_rows < items.num_rows:
                self.items.rewrite(used.cast(item_schema()))

    def _add(self, records: Iterable[Record]) -> None:
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
        rows = [{**asdict(r), "created_at": now} for r in records if r.id not in self._seen]
        self._seen.update(r["id"] for r in rows)
        if rows:
            self.items.append(rows)

    def inputs(self, trial: int) -> None:
        self.links.append(
            [{"id": i, "trial": trial, "replicate": None, "role": "input"} for i in self._inputs]
        )

    def outputs(self, trial: int, replicate: int, records: Sequence[Record]) -> None:
        self._add(records)
        self.links.append(
            [{"id": r.id, "trial": trial, "replicate": replicate, "role": "output"} for r in records]
        )

    def flush(self) -> None:
        self.items.flush()  # a link's component is on disk before the link
        self.links.flush()

    def close(self) -> None:
        self.items.close()
        self.links.close()


def load_components(path: str | Path) -> pd.DataFrame:
    """Components of a results folder joined with their links: one row per (component, trial link);
    a component nobody links to appears once with a null trial."""
    base = Path(path) / COMPONENTS
    if not (base / "items").is_dir():
        check_results_folder(path)
    items = _read(base / "items", ("id",), item_schema())
    links = _read(base / "links", LINK_KEYS, link_schema())
    return items.merge(links, on="id", how="left")


def _read(folder: Path, keys: tuple[str, ...], schema: pa.Schema) -> pd.DataFrame:
    """A components table; empty with its columns while nothing is written yet (a folder is made
    before its first part)."""
    table = read_folder(folder, keys) if folder.is_dir() else None
    return (table if table is not None and table.num_columns else schema.empty_table()).to_pandas()


def describe(path: str | Path, trial: int | None = None) -> str:
    """The text ``sweeper components DIR`` prints: one line per component, with how many trials
    use it as an input and how many runs made it."""
    df = load_components(path)
    if trial is not None:
        df = df[df["trial"] == trial]
    if df.empty and trial is not None:
        return f"no components linked to trial {trial}\n"
    if df.empty:
        return (
            "no components: this sweep declared none and its runs logged none\n"
            "  (declare inputs under components: in the sweep file, or log outputs from a run with"
            " trial.log_component; README: Components)\n"
        )
    lines = [f"{'kind':<10} {'name':<28} {'sha256':<12} {'size':>10}  {'used by':<22} uri"]
    for _, rows in df.groupby("id", sort=False):
        first = rows.iloc[0]
        inputs = rows.loc[rows["role"] == "input", "trial"].nunique()
        outputs = rows[rows["role"] == "output"]
        used = []
        if inputs:
            used.append(f"{inputs} trial{'s' if inputs != 1 else ''} (in)")
        if len(outputs):
            who = outputs.iloc[0]
            used.append(
                f"trial {int(who.trial)} rep {int(who.replicate)} (out)"
                if len(outputs) == 1
                else f"{len(outputs)} runs (out)"
            )
        lines.append(
            f"{first.kind:<10} {str(first['name'])[:28]:<28} {first.sha256[:12]:<12} "
            f"{_size(int(first.bytes)):>10}  {', '.join(used) or '-':<22} {first.uri}"
        )
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
