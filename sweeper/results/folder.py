"""The experiment's results folder as a whole: its place under the results root, moving it aside,
its ``experiment.json`` record, and what a sweep stopped by a failed write kept in it.

The launch (``sweeper.api``) and Slurm submission (``sweeper.submit``) share these, so one rule names
the folder and one writer fills the record that ``sweeper status``, ``report`` and resume read.
"""

from __future__ import annotations

import datetime as dt
import platform
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import StorageError, SweeperError
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, read_json, write_json

if TYPE_CHECKING:
    from sweeper.results.table import TableWriter
    from sweeper.spec.experiment import Experiment

STORAGE_STOPPED = "stopped: storage error"  # experiment.json's status after a failed write


def experiment_folder(spec: Experiment, results: str | Path) -> Path:
    """RESULTS/<name>, for safe names only: the sweep-file rule is applied again here because an
    Experiment built in Python skips it (no '/', '..', spaces, quotes or shell characters)."""
    from sweeper.results.schema import safe_experiment_name

    name = spec.name
    if not safe_experiment_name(name):
        raise SweeperError(
            f"experiment name {name!r} is not a safe folder name"
            "\n  fix: use letters, digits, '.', '_' and '-' only"
            " (it names the results folder)"
        )
    root = Path(results).resolve()
    blocker = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise SweeperError(
            f"--results {results}: {blocker} is a file, not a folder, so the results cannot go there"
            "\n  fix: pass a folder as the results root (it is created when missing), e.g. --results results"
        )
    folder = (root / name).resolve()
    if folder.parent != root:  # e.g. a symlink named like the experiment that points elsewhere
        raise SweeperError(
            f"experiment name {name!r} would leave the results folder {root}"
            f"\n  fix: remove or rename {root / name}"
        )
    return folder


def move_aside(folder: Path) -> Path:
    """Rename a results folder with a timestamp (``--fresh``): results are never deleted."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.{stamp}")
    n = 1
    while target.exists():
        target = folder.with_name(f"{folder.name}.{stamp}-{n}")
        n += 1
    folder.rename(target)
    return target


def write_experiment(
    folder: Path,
    spec: Experiment,
    *,
    status: str,
    backend: str,
    address: str | None,
    fingerprint: Mapping[str, Any],
) -> None:
    """Write ``experiment.json``, keeping the first launch's ``created_at``. ``fingerprint`` comes
    from the engine's resume check (a stage above this one), which compares it on the next launch."""
    path = folder / EXPERIMENT_JSON
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    created = read_json(path).get("created_at", now) if path.exists() else now
    write_json(
        path,
        {
            "name": spec.name,
            "hypothesis": spec.hypothesis,
            "spec": dict(spec.raw),
            "root": spec.root,
            "source": spec.source if spec.source.startswith("<") else str(Path(spec.source).resolve()),
            "status": status,
            # how it was launched, for the literal resume hint `sweeper status` prints
            "backend": backend,
            "address": address,
            "fingerprint": dict(fingerprint),
            # where `sweeper report` logs the verdict too (the spec's tracking: or --mlflow)
            "tracking": (
                {"mlflow_uri": spec.tracking.mlflow_uri, "mlflow_experiment": spec.tracking.mlflow_experiment}
                if spec.tracking is not None
                else None
            ),
            "created_at": created,
            "updated_at": now,
            "host": socket.gethostname(),
            "git_commit": _git_commit(spec.root),
            "versions": _versions(),
        },
    )


def recorded_tracking(
    folder: str | Path, uri: str | None = None, experiment: str | None = None
) -> tuple[str | None, str | None]:
    """The MLflow (tracking URI, experiment) of ``folder``: ``uri`` and ``experiment`` where given,
    else what ``write_experiment`` recorded (the spec's ``tracking:`` or the launch's ``--mlflow``)."""
    path = Path(folder) / EXPERIMENT_JSON
    rec = (read_json(path).get("tracking") if path.is_file() else None) or {}
    return uri or rec.get("mlflow_uri"), experiment or rec.get("mlflow_experiment")


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("sweeper", "ray", "optuna", "numpy", "pandas", "pyarrow"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit(root: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _runs(n: int, kind: str = "") -> str:
    return f"{n} {kind}run{'' if n == 1 else 's'}"


def storage_message(
    spec: Experiment,
    folder: Path,
    *,
    runs_done: int,
    stopping: str,
    writer: TableWriter,
    faults: list[StorageError],
    recorded: bool,
    again: str,
    uri: str | None = None,
) -> str:
    """What a storage fault did, what was kept, and how to go on (``StorageError``'s text). With
    results on object storage (``uri``) it is the local staging copy that failed: the fix names it,
    the rest names the URI (what was kept is streamed up from it)."""
    aside, lost = writer.set_aside, writer.unsaved
    kept = runs_done - (aside[1] if aside else 0) - lost
    shown = uri if uri is not None else str(folder)
    put: Path | str | None = aside[0] if aside else None
    if aside and uri is not None:  # the uploader puts it up beside the table
        put = f"{shown}/{aside[0].relative_to(folder)}"
    kept_parts = [f"{_runs(kept)} in {shown}/{TRIALS}"]
    if aside:
        kept_parts.append(f"the last {_runs(aside[1], 'finished ')} in {put} (a relaunch takes them in)")
    if lost:
        kept_parts.append(f"{_runs(lost, 'finished ')} could not be saved anywhere and run again on resume")
    if stopping.startswith("cancelled"):
        kept_parts.append(f"{stopping} (they run again on resume)")
    lines = [
        f"{spec.name}: stopped because the results folder cannot be written: {faults[0]}",
        f"  kept: {'; '.join(kept_parts)}",
    ]
    lines += [f"  then: {f}" for f in faults[1:] if str(f) != str(faults[0])][:3]
    if not recorded:
        lines.append(f"  {shown}/{EXPERIMENT_JSON} still says running (sweeper status calls it crashed)")
    where = f"{folder} (the local staging copy of {shown}; TMPDIR sets where)" if uri is not None else folder
    lines.append(f"  fix: free space on (or give write permission to) {where}, then resume with: {again}")
    return "\n".join(lines)
