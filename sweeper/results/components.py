"""Trial components: datasets, checkpoints, models, jobs and metadata records, content-hashed (sha256)
and linked to the trials that use them (role ``input``) or make them (role ``output``).

Layout under ``<results>/<experiment>/components/`` (a public contract):

- ``items/`` Parquet: ``id``, ``kind``, ``name``, ``uri``, ``sha256``, ``bytes``, ``created_at``; one row
  per component. The id derives from kind, name and content, so the same file logged twice is one
  component, and a component shared by many trials is stored once.
- ``links/`` Parquet: ``id``, ``trial``, ``replicate`` (null when the whole trial uses it), ``role``.
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

from sweeper.errors import SweeperError
from sweeper.results.schema import COMPONENT_KINDS
from sweeper.results.table import TableWriter, read_folder

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


COMPONENTS = "components"
CHUNK = 1 << 20


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
    """Streams component rows and trial links; the declared inputs are written once, up front."""

    def __init__(self, folder: Path, inputs: Sequence[Record]):
        base = Path(folder) / COMPONENTS
        self.items = TableWriter(base / "items", item_schema(), keys=("id",))
        self.links = TableWriter(base / "links", link_schema(), keys=())
        self._inputs = [r.id for r in inputs]
        self._seen: set[str] = set()
        self._add(inputs)

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

    def close(self) -> None:
        self.items.close()
        self.links.close()


def load_components(path: str | Path) -> pd.DataFrame:
    """Components of a results folder joined with their links: one row per (component, trial link);
    a component nobody links to appears once with a null trial."""
    import pandas as pd

    base = Path(path) / COMPONENTS
    if not (base / "items").is_dir():
        if not (Path(path) / "experiment.json").is_file():
            raise SweeperError(f"{path}: not a results folder (no experiment.json)")
        return pd.DataFrame(columns=[*item_schema().names, "trial", "replicate", "role"])
    items = read_folder(base / "items", keys=("id",)).to_pandas()
    links = (
        read_folder(base / "links", keys=()).to_pandas()
        if (base / "links").is_dir()
        else pd.DataFrame(columns=link_schema().names)
    )
    return items.merge(links, on="id", how="left")


def describe(path: str | Path, trial: int | None = None) -> str:
    """The text ``sweeper components DIR`` prints: one line per component, with how many trials
    use it as an input and how many runs made it."""
    df = load_components(path)
    if trial is not None:
        df = df[df["trial"] == trial]
    if df.empty:
        return "no components" + (f" linked to trial {trial}" if trial is not None else "") + "\n"
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
