"""The declared components of a sweep, made ready on the driver before any run: input files hashed
(a changed one is refused on a resume), metadata records written, shared jobs run once.

Hashing, records and the components tables themselves are the results layer's
(:mod:`sweeper.results.components`); this is the driver's preparation step, which runs user code.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError, option
from sweeper.results.components import COMPONENTS, ComponentWriter, Record, hash_path, record
from sweeper.results.table import read_json, write_json

if TYPE_CHECKING:
    from sweeper.spec.experiment import Component, Experiment


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
        raise SweeperError(
            f"{where}: no such file or folder {path}"
            "\n  fix: create it, or correct the path (relative to the sweep file's folder)"
        )
    sha, size = hash_path(path)
    return record(c.name, c.kind, path.as_uri(), sha, size)


def _same(old: dict[str, Any] | None, rec: Record, where: str, what: str) -> None:
    if old is not None and old.get("sha256") != rec.sha256:
        raise SweeperError(
            f"{where}: {what} changed since this experiment's first launch (sha256 "
            f"{old['sha256'][:12]}... then, {rec.sha256[:12]}... now); the trials already in the table "
            "were made with the old content\n  fix: restore the original, or start over with "
            f"{option('fresh')}, or launch it as a new experiment"
        )


def _job(
    spec: Experiment,
    c: Component,
    folder: Path,
    inputs: Inputs,
    old: dict[str, Any] | None,
    where: str,
    state: dict[str, Any],
) -> Record:
    """Run a shared job once (or reuse its output from an earlier launch); its output is ``c``."""
    from sweeper.run.objective import load_objective
    from sweeper.run.types import RunContext

    func = load_objective(RunContext(c.job, spec.root, ()))  # type: ignore[arg-type]
    params = inspect.signature(func).parameters
    given = {n: p for n, p in inputs.paths.items() if n in params}
    missing = [
        n
        for n, p in params.items()
        if n != "out"
        and n not in given
        and p.default is p.empty
        and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if missing:
        raise SweeperError(
            f"{where}: job {c.job} needs {', '.join(missing)}, which no component "
            "declared above it provides\n  fix: declare them under components: before "
            f"{c.name!r}, or give those parameters defaults"
        )
    source = inspect.getsourcefile(func)
    key = hashlib.sha256(Path(source).read_bytes() if source else c.job.encode())  # type: ignore[union-attr]
    for name in sorted(given):
        key.update(f"\0{name}\0{next(r.sha256 for r in inputs.records if r.name == name)}".encode())
    job_key = key.hexdigest()
    job_rec = record(c.job, "job", f"python:{c.job}", job_key, 0)  # type: ignore[arg-type]
    if old is not None and old.get("job_sha256") not in (None, job_key):
        raise SweeperError(
            f"{where}: the job {c.job} or its inputs changed since this experiment's "
            f"first launch\n  fix: restore them, or start over with {option('fresh')}"
        )
    out = folder / "artifacts" / "jobs" / c.name
    # kept relative to the results folder, so a moved folder (or a bucket's fresh local copy) finds it
    produced = folder / old["path"] if old and old.get("path") else None
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
            raise SweeperError(
                f"{where}: job {c.job} returned {result!r}, which does not exist"
                "\n  fix: return the path of what it wrote (or None for its out folder)"
            )
    sha, size = hash_path(produced)
    rec = record(c.name, c.kind, produced.as_uri(), sha, size)
    _same(old, rec, where, f"the output of job {c.job}")
    inputs.records.append(job_rec)
    inputs.paths[c.name] = str(produced)
    kept = produced.relative_to(folder) if produced.is_relative_to(folder) else produced
    state[c.name] = {"job": c.job, "job_sha256": job_key, "path": str(kept)}
    return rec
