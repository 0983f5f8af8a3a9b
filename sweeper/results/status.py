"""Where an experiment stands: counts, best so far, runs in flight, and whether it can be resumed.

A running driver holds an exclusive lock on ``<folder>/driver.lock`` (released by the kernel when the
process dies, even by SIGKILL, so a stale lock never blocks a resume) and rewrites
``<folder>/driver.json`` every few seconds with its pid, host and runs in flight. ``sweeper status``
reads both plus the trial table, and never writes anything.

:func:`experiment_status` returns plain data so that other views (e.g. the Slurm job state) can
extend it: add a field, fill it in a function of your own, and print it in :func:`format_status`.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, read_json, write_json

if TYPE_CHECKING:
    from sweeper.engine.loop import Stats

DRIVER_JSON = "driver.json"
DRIVER_LOCK = "driver.lock"
HEARTBEAT_S = 2.0
FRESH_S = 15.0  # a heartbeat this recent from another host counts as a live driver


class DriverLock:
    """An exclusive flock on the results folder for the life of one driver.

    Two drivers on one folder would write parts with the same numbers and lose rows; the second one
    is refused with a message naming the first (pid, host).
    """

    def __init__(self, folder: Path):
        self.path = folder / DRIVER_LOCK
        self._fd: int | None = None

    def acquire(self) -> DriverLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _remote_alive(self.path.parent):  # shared filesystems may not share flocks
                raise OSError("a driver on another host is alive")
        except OSError:
            os.close(fd)
            who = _driver_record(self.path.parent)
            by = f" (pid {who.get('pid')} on {who.get('host')})" if who else ""
            raise SweeperError(
                f"{self.path.parent} is being run by another sweeper driver{by}"
                "\n  fix: wait for it to end, or stop it (Ctrl-C) and relaunch; "
                f"`sweeper status {self.path.parent}` shows its progress") from None
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays (never deleted)
            self._fd = None


def is_locked(folder: Path) -> bool:
    """Whether a live driver holds ``folder`` (a crashed one holds nothing)."""
    import fcntl

    path = folder / DRIVER_LOCK
    if _remote_alive(folder):
        return True
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


class Heartbeat:
    """The engine's progress hook that keeps ``driver.json`` fresh (at most every HEARTBEAT_S)."""

    def __init__(self, folder: Path, then: Any = None):
        self.path = folder / DRIVER_JSON
        self.then = then  # the progress hook this one wraps, if any
        self.started = _now()
        self._last = 0.0

    def __call__(self, stats: Stats) -> None:
        if self.then is not None:
            self.then(stats)
        if time.monotonic() - self._last >= HEARTBEAT_S:
            self.write(stats, "running")

    def write(self, stats: Stats | None, state: str) -> None:
        self._last = time.monotonic()
        write_json(self.path, {
            "state": state, "pid": os.getpid(), "host": socket.gethostname(),
            "started_at": self.started, "heartbeat_at": _now(),
            "running": stats.running if stats is not None and state == "running" else 0,
            "stopping": stats.stopping if stats is not None else "",
        })


@dataclass(frozen=True, slots=True)
class ExperimentStatus:
    """Plain data about one results folder; ``format_status`` turns it into text."""

    folder: Path
    name: str
    state: str  # running | finished | interrupted | stopped | failed | crashed | unknown
    source: str  # the sweep file it was launched from
    trials_total: int | None
    replicates: int
    rows: int = 0
    trials: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    running: int = 0  # runs in flight, when a driver is alive
    driver: dict[str, Any] = field(default_factory=dict)
    resumable: bool = False
    note: str = ""  # why it can or cannot be resumed, and how


def experiment_status(folder: str | Path) -> ExperimentStatus:
    """Read (never write) what a results folder says about its experiment."""
    from sweeper.api import best_trial
    from sweeper.results.table import load, read_spec

    folder = Path(folder)
    if not (folder / EXPERIMENT_JSON).is_file():
        raise SweeperError(f"{folder}: not a results folder (no {EXPERIMENT_JSON})"
                           "\n  fix: pass RESULTS/<experiment>, e.g. results/quickstart")
    alive = is_locked(folder)  # before the record: a driver that ends meanwhile wrote its end state
    record = read_json(folder / EXPERIMENT_JSON)
    spec = read_spec(folder)
    from sweeper.search.searcher import Searcher

    total = Searcher(spec).total
    driver = _driver_record(folder)
    state = str(record.get("status", "unknown"))
    if state == "running" and not alive:
        state = "crashed"  # the driver died without saying so (SIGKILL, power loss, OOM)
    base = dict(folder=folder, name=spec.name, source=str(record.get("source", "")),
                trials_total=total, replicates=spec.replicates, driver=driver)
    try:
        table = load(folder) if (folder / TRIALS).is_dir() else None
    except SweeperError as exc:
        return ExperimentStatus(state=state, resumable=False, note=f"the trial table is damaged: {exc}",
                                **base)  # type: ignore[arg-type]
    counts: dict[str, int] = {}
    rows = trials = 0
    best = None
    if table is not None and len(table):
        counts = {str(k): int(v) for k, v in table["status"].value_counts().items()}
        rows, trials = len(table), int(table["trial"].nunique())
        best = best_trial(table, spec)
    want = total * spec.replicates
    failed = counts.get("failed", 0) + counts.get("timeout", 0)
    if alive:
        resumable, note = False, "a driver is running it now; it cannot be launched twice"
    elif rows < want:
        resumable = True
        note = f"{want - rows} of {want} runs left; `sweeper launch {base['source'] or 'FILE'}` continues it"
    elif failed:
        resumable = True
        note = (f"all runs done; `sweeper launch {base['source'] or 'FILE'} --retry-failed`"
                f" reruns the {failed} failed")
    else:
        resumable, note = True, "all runs done; raise trials or replicates in the sweep file to extend it"
    return ExperimentStatus(state=state, rows=rows, trials=trials, counts=counts, best=best,
                            running=int(driver.get("running", 0)) if alive else 0,
                            resumable=resumable, note=note, **base)  # type: ignore[arg-type]


def params_text(params: dict[str, Any]) -> str:
    """``lr=0.02676, steps=120``: floats to 4 significant digits, for one-line summaries."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def format_status(st: ExperimentStatus) -> str:
    want = (st.trials_total or 0) * st.replicates
    lines = [f"{st.name}: {st.state}  ({st.folder})"]
    if st.state == "running" and st.driver:
        lines.append(f"  driver: pid {st.driver.get('pid')} on {st.driver.get('host')}, "
                     f"last heartbeat {st.driver.get('heartbeat_at')}"
                     + (f", {st.driver['stopping']}" if st.driver.get("stopping") else ""))
    counts = ", ".join(f"{n} {s}" for s, n in sorted(st.counts.items())) or "none yet"
    lines.append(f"  runs: {st.rows}/{want} recorded ({counts}); trials: {st.trials}/{st.trials_total}")
    lines.append(f"  in flight: {st.running}")
    if st.best:
        lines.append(f"  best so far: trial {st.best['trial']} {st.best['metric']}={st.best['mean']:.6g}"
                     f" (mean of {st.best['n']}) with {params_text(st.best['params'])}")
    lines.append(f"  resumable: {'yes' if st.resumable else 'no'} - {st.note}")
    return "\n".join(lines)


def _remote_alive(folder: Path) -> bool:
    """A driver on another host that refreshed driver.json within FRESH_S (flock may not cross NFS)."""
    rec = _driver_record(folder)
    if rec.get("state") != "running" or rec.get("host") in (None, socket.gethostname()):
        return False
    try:
        beat = dt.datetime.fromisoformat(str(rec.get("heartbeat_at")))
    except ValueError:
        return False
    return (dt.datetime.now(dt.UTC) - beat).total_seconds() < FRESH_S


def _driver_record(folder: Path) -> dict[str, Any]:
    path = folder / DRIVER_JSON
    try:
        data = read_json(path) if path.is_file() else {}
    except SweeperError:
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
