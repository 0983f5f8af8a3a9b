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
import inspect
import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.table import TableWriter, read_folder, read_json, write_json

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from sweeper.spec.model import Component, Experiment

COMPONENTS = "components"
KINDS = ("dataset", "checkpoint", "model", "job", "metadata")
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
    if kind not in KINDS:
        raise ValueError(f"log_component(kind={kind!r}): unknown kind\n  fix: use one of {', '.join(KINDS)}")
    if not name or not isinstance(name, str):
        raise ValueError("log_component(name=...): give the component a name, e.g. 'model'")
    src = path if path.is_absolute() else artifact_dir / path
    if not src.exists():
        raise FileNotFoundError(f"log_component({name!r}, {str(path)!r}): no such file or folder {src}"
                                "\n  fix: write it first (relative paths are inside trial.artifact_dir)")
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

    return pa.schema([pa.field("id", pa.string()), pa.field("kind", pa.string()),
                      pa.field("name", pa.string()), pa.field("uri", pa.string()),
                      pa.field("sha256", pa.string()), pa.field("bytes", pa.int64()),
                      pa.field("created_at", pa.timestamp("us", tz="UTC"))])


def link_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field("id", pa.string()), pa.field("trial", pa.int64()),
                      pa.field("replicate", pa.int32()), pa.field("role", pa.string())])


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
        self.links.append([{"id": i, "trial": trial, "replicate": None, "role": "input"}
                           for i in self._inputs])

    def outputs(self, trial: int, replicate: int, records: Sequence[Record]) -> None:
        self._add(records)
        self.links.append([{"id": r.id, "trial": trial, "replicate": replicate, "role": "output"}
                           for r in records])

    def close(self) -> None:
        self.items.close()
        self.links.close()


@dataclass(slots=True)
class Inputs:
    """The declared components of a sweep, ready: their records and the paths runs are given."""

    folder: Path
    records: list[Record] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)

    def writer(self) -> ComponentWriter:
        return ComponentWriter(self.folder, self.records)


def prepare(spec: Experiment, folder: Path) -> Inputs | None:
    """Hash declared inputs, refuse changed ones on a resume, run shared jobs once; on the driver."""
    if not spec.components:
        return None
    state_path = folder / COMPONENTS / "inputs.json"
    before: dict[str, Any] = read_json(state_path).get("inputs", {}) if state_path.is_file() else {}
    inputs = Inputs(folder)
    state: dict[str, Any] = {}
    for c in spec.components:
        where = f"{spec.source}: components.{c.name}"
        if c.path is not None:
            rec = _declared_file(c, where)
            _same(before.get(c.name), rec, where, c.path)
            inputs.paths[c.name] = c.path
        elif c.job is not None:
            rec = _job(spec, c, folder, inputs, before.get(c.name), where, state)
        else:
            path = folder / "artifacts" / "components" / f"{c.name}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(c.value, sort_keys=True, indent=2) + "\n", encoding="utf-8")
            sha, size = hash_path(path)
            rec = record(c.name, c.kind, path.as_uri(), sha, size)
            inputs.paths[c.name] = str(path)
        inputs.records.append(rec)
        state.setdefault(c.name, {}).update(sha256=rec.sha256, uri=rec.uri, bytes=rec.bytes, kind=rec.kind)
    write_json(state_path, {"inputs": state})
    return inputs


def _declared_file(c: Component, where: str) -> Record:
    path = Path(c.path)  # type: ignore[arg-type]
    if not path.exists():
        raise SweeperError(f"{where}: no such file or folder {path}"
                           "\n  fix: create it, or correct the path (relative to the sweep file's folder)")
    sha, size = hash_path(path)
    return record(c.name, c.kind, path.as_uri(), sha, size)


def _same(old: dict[str, Any] | None, rec: Record, where: str, what: str) -> None:
    if old is not None and old.get("sha256") != rec.sha256:
        raise SweeperError(
            f"{where}: {what} changed since this experiment's first launch (sha256 "
            f"{old['sha256'][:12]}... then, {rec.sha256[:12]}... now); the trials already in the table "
            "were made with the old content\n  fix: restore the original, or start over with --fresh "
            "(fresh=True), or launch it as a new experiment")


def _job(spec: Experiment, c: Component, folder: Path, inputs: Inputs, old: dict[str, Any] | None,
         where: str, state: dict[str, Any]) -> Record:
    """Run a shared job once (or reuse its output from an earlier launch); its output is ``c``."""
    from sweeper.run.objective import ObjectiveRef, load_objective

    func = load_objective(ObjectiveRef(c.job, spec.root, ()))  # type: ignore[arg-type]
    params = inspect.signature(func).parameters
    given = {n: p for n, p in inputs.paths.items() if n in params}
    missing = [n for n, p in params.items() if n != "out" and n not in given and p.default is p.empty
               and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    if missing:
        raise SweeperError(f"{where}: job {c.job} needs {', '.join(missing)}, which no component "
                           "declared above it provides\n  fix: declare them under components: before "
                           f"{c.name!r}, or give those parameters defaults")
    source = inspect.getsourcefile(func)
    key = hashlib.sha256(Path(source).read_bytes() if source else c.job.encode())  # type: ignore[union-attr]
    for name in sorted(given):
        key.update(f"\0{name}\0{next(r.sha256 for r in inputs.records if r.name == name)}".encode())
    job_key = key.hexdigest()
    job_rec = record(c.job, "job", f"python:{c.job}", job_key, 0)  # type: ignore[arg-type]
    if old is not None and old.get("job_sha256") not in (None, job_key):
        raise SweeperError(f"{where}: the job {c.job} or its inputs changed since this experiment's "
                           "first launch\n  fix: restore them, or start over with --fresh")
    out = folder / "artifacts" / "jobs" / c.name
    produced = Path(old["path"]) if old and old.get("path") else None
    if produced is None or not produced.exists() or hash_path(produced)[0] != old["sha256"]:  # type: ignore[index]
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        kwargs: dict[str, Any] = dict(given)
        if "out" in params:
            kwargs["out"] = str(out)
        try:
            result = func(**kwargs)
        except Exception as exc:
            raise SweeperError(f"{where}: job {c.job} failed: {type(exc).__name__}: {exc}") from exc
        produced = out if result is None else out / result  # an absolute result stays as it is
        if not produced.exists():
            raise SweeperError(f"{where}: job {c.job} returned {result!r}, which does not exist"
                               "\n  fix: return the path of what it wrote (or None for its out folder)")
    sha, size = hash_path(produced)
    rec = record(c.name, c.kind, produced.as_uri(), sha, size)
    _same(old, rec, where, f"the output of job {c.job}")
    inputs.records.append(job_rec)
    inputs.paths[c.name] = str(produced)
    state[c.name] = {"job": c.job, "job_sha256": job_key, "path": str(produced)}
    return rec


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
    links = (read_folder(base / "links", keys=()).to_pandas() if (base / "links").is_dir()
             else pd.DataFrame(columns=link_schema().names))
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
            used.append(f"trial {int(who.trial)} rep {int(who.replicate)} (out)" if len(outputs) == 1
                        else f"{len(outputs)} runs (out)")
        lines.append(f"{first.kind:<10} {str(first['name'])[:28]:<28} {first.sha256[:12]:<12} "
                     f"{_size(int(first.bytes)):>10}  {', '.join(used) or '-':<22} {first.uri}")
    return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
