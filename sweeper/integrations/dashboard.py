"""``sweeper dashboard DIR``: the Optuna study rebuilt from the trial table, shown in optuna-dashboard.

The study is rebuilt with the same reading of the table that resume uses
(:func:`sweeper.engine.resume.restore`: one entry per finished trial, its aggregate and status) and
written to ``DIR/optuna.journal``, an Optuna JournalStorage file that ``optuna-dashboard`` opens as it
is (``optuna-dashboard DIR/optuna.journal`` works too). Each trial carries its replicates: user
attributes ``sweeper_trial``, ``seeds``, ``statuses`` and ``<metric>_per_replicate``, and the primary
metric of replicate r as the intermediate value at step r. While the sweep runs, trials that finish
are appended every few seconds; the journal is derived data, written afresh by each ``sweeper dashboard``.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from sweeper.spec.experiment import Experiment

JOURNAL = "optuna.journal"
MISSING = (
    "optuna-dashboard is not installed\n  fix: pip install 'sweeper[dashboard]' (optuna-dashboard>=0.21)"
)


class StudyMirror:
    """The study of one results folder in a journal file; ``sync()`` appends trials finished since."""

    def __init__(self, folder: str | Path):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        from sweeper.results.table import read_spec
        from sweeper.search.proposers import directions

        self.folder = Path(folder)
        self.spec = read_spec(self.folder)
        self.path = self.folder / JOURNAL
        self.path.unlink(missing_ok=True)  # derived from the table: rebuilt, never merged
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = JournalStorage(JournalFileBackend(str(self.path)))
        self.study: optuna.Study = optuna.create_study(
            storage=storage,
            study_name=self.spec.name,
            directions=list(directions(self.spec)),  # type: ignore[arg-type]
        )
        self.study.set_user_attr("hypothesis", self.spec.hypothesis)
        self.written: set[int] = set()

    def sync(self) -> int:
        """Add the trials that finished since the last call; returns how many were added."""
        from sweeper.engine.resume import restore
        from sweeper.results.table import load

        restored = restore(self.spec, self.folder, None)
        new = [f for f in restored.finished if f[0] not in self.written]
        if not new:
            return 0
        table = load(self.folder)
        by_trial = {int(k): rows for k, rows in table.groupby("trial", sort=False)}
        for k, params, values, status in new:
            self.study.add_trial(_trial(self.spec, k, params, values, status, by_trial[k]))
            self.written.add(k)
        return len(new)


def _trial(
    spec: Experiment,
    k: int,
    params: dict[str, Any],
    values: list[float] | None,
    status: str,
    rows: pd.DataFrame,
) -> optuna.trial.FrozenTrial:
    import optuna

    from sweeper.search.space import distributions

    ts = optuna.trial.TrialState
    dists = distributions(spec.variables, params)
    ok = status == "complete" and values is not None and all(map(math.isfinite, values))
    state = ts.COMPLETE if ok else ts.PRUNED if status == "pruned" else ts.FAIL
    rows = rows.sort_values("replicate")
    attrs: dict[str, Any] = {
        "sweeper_trial": k,
        "replicates": len(rows),
        "seeds": [int(s) for s in rows["seed"]],
        "statuses": [str(s) for s in rows["status"]],
    }
    for m in spec.metrics:
        if m.name in rows.columns:
            attrs[f"{m.name}_per_replicate"] = [_plain(v) for v in rows[m.name]]
    primary = spec.primary.name
    steps = {
        int(r): float(v)
        for r, v in zip(rows["replicate"], rows.get(primary, []), strict=False)
        if _plain(v) is not None
    }
    return optuna.trial.create_trial(
        params={name: params[name] for name in dists},
        distributions=dists,
        state=state,
        values=values if ok else None,
        user_attrs=attrs,
        intermediate_values=steps,
    )


def _plain(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def dashboard_command(journal: Path, host: str, port: int) -> list[str]:
    """The optuna-dashboard command line for ``journal``; refuses early when the extra is missing."""
    try:
        import optuna_dashboard  # noqa: F401
    except ImportError:
        raise SweeperError(MISSING) from None
    exe = Path(sys.executable).with_name("optuna-dashboard")
    cmd = str(exe) if exe.is_file() else shutil.which("optuna-dashboard")
    if cmd is None:
        raise SweeperError(MISSING)
    return [cmd, str(journal), "--host", host, "--port", str(port)]


def run_dashboard(
    folder: str | Path,
    host: str = "127.0.0.1",
    port: int = 8080,
    every: float = 3.0,
    pull: Callable[[], None] | None = None,
) -> None:
    """Rebuild the study, start optuna-dashboard on it, and keep adding trials until Ctrl-C;
    ``pull`` refreshes a local copy of a results URI before each round."""
    from sweeper.results.table import check_results_folder

    folder = check_results_folder(folder)
    mirror = StudyMirror(folder)
    cmd = dashboard_command(mirror.path, host, port)
    _check_port(host, port)  # else gunicorn retries for 5 s after we said where the dashboard is
    mirror.sync()
    # its own process group: optuna-dashboard forks a server process, and both must end with us
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` cleans up like Ctrl-C
    print(
        f"optuna-dashboard at http://{host}:{port}/ on {mirror.path} ({len(mirror.written)} trials;"
        f" new ones appear every {every:g}s; Ctrl-C to stop)",
        flush=True,
    )
    try:
        while proc.poll() is None:
            time.sleep(every)
            if pull is not None:
                pull()
            mirror.sync()
        err = proc.stderr.read().decode(errors="replace")[-2000:] if proc.stderr else ""
        raise SweeperError(f"optuna-dashboard exited with code {proc.returncode}:\n{err}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop_group(proc)


def _check_port(host: str, port: int) -> None:
    import socket

    from sweeper.report.live import cannot_listen

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise cannot_listen(host, port, exc) from None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """End the dashboard's process group (its id is the pid we started), politely, then for sure."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                time.sleep(0.2)  # the forked server may outlive its parent by a moment
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()
