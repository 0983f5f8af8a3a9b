"""Runs whose results live on object storage (``--results s3://...``), wherever they run.

The driver's results folder is then a staging copy on the driver's machine, which a worker on another
machine never sees. So a run keeps its artifact folder on its own machine, puts it under
``<uri>/artifacts/trial-N/rep-R/`` itself when it ends (its components' ``uri`` then names the
bucket), and reads the declared components the driver made inside the results folder (metadata
records, shared jobs' outputs) from the bucket into a cache on its machine. Credentials and the
endpoint are the driver's storage variables, carried by the run context (:mod:`sweeper.results.store`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from sweeper.results.schema import run_artifacts
from sweeper.results.store import fetch, put_folder
from sweeper.run.types import Outcome, Run, RunContext

_FETCHED: dict[str, str] = {}  # driver path -> its copy on this machine, once per worker process


def _home(ref: RunContext) -> Path:
    """This machine's folder for one experiment's runs, apart from other experiments' and users'."""
    key = hashlib.sha256(str(ref.results_uri).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sweeper-{os.getuid()}" / key


def artifact_dir(ref: RunContext, run: Run) -> Path:
    return _home(ref) / run_artifacts(run.trial, run.replicate)


def ship(ref: RunContext, run: Run, outcome: Outcome) -> Outcome:
    """Put the run's artifact folder (if it made one) in the bucket, and name it there in its components.

    A run whose artifacts cannot be put is recorded as failed, saying where they stay: its table row
    must not point at objects that are not there."""
    local = artifact_dir(ref, run)
    if ref.results_uri is None or not local.is_dir():
        return outcome
    target = f"{ref.results_uri}/{run_artifacts(run.trial, run.replicate)}"
    try:
        put_folder(local, target, ref.storage_env)
    except Exception as exc:
        return replace(
            outcome,
            status="failed",
            error=f"the run's artifacts could not be put at {target} ({exc}); they stay in {local} on"
            f" {outcome.node}\n  fix: check the storage credentials and endpoint the workers get"
            " (the driver's AWS_* variables), then relaunch with --retry-failed",
        )
    prefix = local.resolve().as_uri()
    components = [
        replace(c, uri=target + c.uri[len(prefix) :]) if c.uri.startswith(prefix) else c
        for c in outcome.components or []
    ]
    shutil.rmtree(local, ignore_errors=True)
    with contextlib.suppress(OSError):  # trial-N, once its last replicate here is in the bucket
        local.parent.rmdir()
    return replace(outcome, components=components or outcome.components)


def localize(ref: RunContext) -> RunContext:
    """The run context with declared components that live in the driver's results folder read from
    the bucket into this machine's cache (once per worker process)."""
    if ref.results_uri is None or ref.folder is None or not ref.inputs:
        return ref
    inputs = []
    for name, path in ref.inputs:
        rel = Path(path).relative_to(ref.folder).as_posix() if Path(path).is_relative_to(ref.folder) else None
        if rel is not None and not os.path.exists(_FETCHED.get(path, "")):  # a tmp cleaner may take it
            local = _home(ref) / "inputs" / hashlib.sha256(path.encode()).hexdigest()[:12] / Path(path).name
            fetch(f"{ref.results_uri}/{rel}", local, ref.storage_env)
            _FETCHED[path] = str(local)
        inputs.append((name, _FETCHED.get(path, path)))
    return replace(ref, inputs=tuple(inputs))
