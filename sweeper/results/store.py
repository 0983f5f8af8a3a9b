"""Results on object storage (``s3://``, ``gs://``, any ``pyarrow.fs`` URI): the one place that talks to it.

Every other module reads and writes a local folder. For a URI:

- ``launch`` works in a local staging folder that starts as a copy of what the URI holds (so a
  sweep resumes from the bucket) and :class:`Uploader` streams it up while the sweep runs: every
  second each file that changed is put (one PUT is atomic on object storage, so readers never see
  half a part), and files the folder dropped (parts folded by compaction) are removed after their
  replacement is up. A killed driver loses at most the last second of parts, as on a local disk.
- the read commands (``status``, ``table``, ``report``, ``load``, ...) read a fresh local copy.

The driver lock on object storage: there are no locks there, so the rule is the heartbeat.
A launch refuses a URI whose ``driver.json`` says ``running`` with a heartbeat younger than
``FRESH_S`` (the driver rewrites it every 2 s and uploads it within a second): at most one
driver per experiment, and a killed driver's folder can be resumed ``FRESH_S`` seconds later.
Credentials and the endpoint come from the usual variables (``AWS_ENDPOINT_URL`` included).
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError

URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
EVERY_S = 1.0
SKIP = ("driver.lock",)  # a local flock means nothing in a bucket


def is_uri(path: str | Path) -> bool:
    return isinstance(path, str) and bool(URI_RE.match(path))


def join(uri: str, name: str) -> str:
    return uri.rstrip("/") + "/" + name


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow's errors name neither the option nor the fix
        raise SweeperError(
            f"{uri}: cannot open this results URI ({exc})"
            "\n  fix: use s3://bucket/prefix, gs://bucket/prefix or another pyarrow.fs URI; for S3 set"
            " AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (and AWS_ENDPOINT_URL)"
        ) from None
    return filesystem, str(path).rstrip("/")


def download(uri: str, folder: Path) -> bool:
    """Copy the experiment folder at ``uri`` into ``folder``; False when the URI holds nothing yet."""
    from pyarrow import fs

    remote, path = _filesystem(uri)
    try:
        if remote.get_file_info(path).type != fs.FileType.Directory:
            return False
        folder.mkdir(parents=True, exist_ok=True)
        fs.copy_files(
            path, str(folder), source_filesystem=remote, destination_filesystem=fs.LocalFileSystem()
        )
    except OSError as exc:
        raise SweeperError(
            f"{uri}: cannot read it ({exc})\n  fix: check the credentials and endpoint"
        ) from None
    return True


def local_copy(uri: str) -> Path:
    """A fresh local copy of the experiment folder at ``uri``, for the commands that only read."""
    folder = Path(tempfile.mkdtemp(prefix="sweeper-read-")) / uri.rstrip("/").rsplit("/", 1)[-1]
    if not download(uri, folder):
        raise SweeperError(
            f"{uri}: no results there\n  fix: pass RESULTS/<experiment>, e.g. s3://bucket/x/quickstart"
        )
    return folder


class Uploader:
    """Streams a local experiment folder to its URI from a thread: changed files up, dropped files removed."""

    def __init__(self, folder: Path, uri: str):
        self.folder, self.uri = folder, uri
        self.remote, self.path = _filesystem(uri)
        self._sent: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) put
        self._stop = threading.Event()
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="sweeper-upload", daemon=True)

    def start(self, *, already_up: bool = False) -> Uploader:
        if already_up:  # what the download brought is up there already
            self.baseline()
        self._thread.start()
        return self

    def baseline(self) -> Uploader:
        """Count the folder as it is now as up there already (a fresh download)."""
        self._sent = self._scan()
        return self

    def _scan(self) -> dict[str, tuple[int, int]]:
        out = {}
        for p in self.folder.rglob("*"):
            if p.is_file() and p.name not in SKIP and not p.name.endswith(".tmp"):
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                out[p.relative_to(self.folder).as_posix()] = (st.st_size, st.st_mtime_ns)
        return out

    def push(self) -> None:
        """Put what changed since the last push, then remove what the folder no longer has."""
        now = self._scan()
        for rel, sig in sorted(now.items(), key=lambda kv: kv[0].endswith(".json")):  # data before records
            if self._sent.get(rel) == sig:
                continue
            try:
                data = (self.folder / rel).read_bytes()
            except FileNotFoundError:
                continue
            target = f"{self.path}/{rel}"
            self.remote.create_dir(target.rsplit("/", 1)[0], recursive=True)
            with self.remote.open_output_stream(target) as out:
                out.write(data)
            self._sent[rel] = sig
        for rel in [r for r in self._sent if r not in now]:
            with contextlib.suppress(FileNotFoundError, OSError):
                self.remote.delete_file(f"{self.path}/{rel}")
            del self._sent[rel]

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_S):
            try:
                self.push()
            except Exception as exc:  # retried next second and at the end
                if not self._warned:
                    self._warned = True
                    print(f"\nwarning: upload to {self.uri} failed ({exc}); retrying", file=sys.stderr)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.push()


@contextlib.contextmanager
def staged(uri: str, name: str, check: Callable[[Path, str], None]) -> Iterator[Path]:
    """A local results root whose ``name`` folder mirrors ``uri/name``: downloaded first, streamed up.
    ``check(folder, uri)`` runs on what was downloaded before anything is written (the lock rule)."""
    target = join(uri, name)
    root = Path(tempfile.mkdtemp(prefix="sweeper-results-"))
    folder = root / name
    had = download(target, folder)
    if had:
        check(folder, target)
        print(f"sweeper: resuming from {target}", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    up = Uploader(folder, target).start(already_up=had)
    try:
        yield root
    finally:
        up.close()
