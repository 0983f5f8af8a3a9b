"""One driver per results folder: an exclusive lock and a heartbeat file.

A running driver holds an exclusive lock on ``<folder>/driver.lock`` (released by the kernel when the
process dies, even by SIGKILL, so a stale lock never blocks a resume) and rewrites
``<folder>/driver.json`` every few seconds with its pid, host and runs in flight. ``sweeper status``
reads both (:mod:`sweeper.results.status`).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from pathlib import Path
from typing import Any, Protocol

from sweeper.errors import SweeperError, command
from sweeper.results.table import read_json, write_json


class Progress(Protocol):
    """What the heartbeat reads of the engine's progress (``sweeper.engine.loop.Stats``)."""

    running: int
    queued: int
    stopping: str


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
            who = driver_record(self.path.parent)
            by = f" (pid {who.get('pid')} on {who.get('host')})" if who else ""
            raise SweeperError(
                f"{self.path.parent} is being run by another sweeper driver{by}"
                "\n  fix: wait for it to end, or stop it (Ctrl-C) and relaunch; "
                f"`{command('status', self.path.parent)}` shows its progress"
            ) from None
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

    def __call__(self, stats: Progress) -> None:
        if self.then is not None:
            self.then(stats)
        if time.monotonic() - self._last >= HEARTBEAT_S:
            self.write(stats, "running")

    def write(self, stats: Progress | None, state: str) -> None:
        self._last = time.monotonic()
        write_json(
            self.path,
            {
                "state": state,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started_at": self.started,
                "heartbeat_at": _now(),
                "running": stats.running if stats is not None and state == "running" else 0,
                "queued": stats.queued if stats is not None and state == "running" else 0,
                "stopping": stats.stopping if stats is not None else "",
            },
        )


def _remote_alive(folder: Path) -> bool:
    """A driver on another host that refreshed driver.json within FRESH_S (flock may not cross NFS);
    for a local copy of a results URI, any driver that did (a bucket has no flock at all)."""
    from sweeper.results.store import COPY_OF

    rec = driver_record(folder)
    here = rec.get("host") in (None, socket.gethostname()) and not (folder / COPY_OF).exists()
    if rec.get("state") != "running" or here:
        return False
    try:
        beat = dt.datetime.fromisoformat(str(rec.get("heartbeat_at")))
    except ValueError:
        return False
    return (dt.datetime.now(dt.UTC) - beat).total_seconds() < FRESH_S


def driver_record(folder: Path) -> dict[str, Any]:
    path = folder / DRIVER_JSON
    try:
        data = read_json(path) if path.is_file() else {}
    except SweeperError:
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_no_live_driver(folder: Path, uri: str) -> None:
    """The lock rule on object storage: refuse while the URI's heartbeat is younger than FRESH_S."""
    rec = driver_record(folder)
    if rec.get("state") != "running":
        return
    try:
        age = (
            dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(str(rec.get("heartbeat_at")))
        ).total_seconds()
    except ValueError:
        return
    if age < FRESH_S:
        raise SweeperError(
            f"{uri} is being run by another sweeper driver (pid {rec.get('pid')} on {rec.get('host')},"
            f" heartbeat {age:.0f}s ago)\n  fix: wait for it to end, or stop it; a driver that died can be"
            f" resumed {FRESH_S:g}s after its last heartbeat"
        )
