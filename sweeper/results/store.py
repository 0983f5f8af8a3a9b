"""Results on object storage (``s3://``, ``gs://``, any ``pyarrow.fs`` URI, and through fsspec any URI
it opens): the one place that talks to it.

Every other module reads and writes a local folder. For a URI:

- ``launch`` works in a local staging folder that starts as a copy of what the URI holds (so a
  sweep resumes from the bucket) and :class:`Uploader` streams it up while the sweep runs: every
  second each file that changed is put (one PUT is atomic on object storage, so readers never see
  half a part), and files the folder dropped (parts folded by compaction) are removed after their
  replacement is up. A killed driver loses at most the last second of parts, as on a local disk.
- the read commands (``status``, ``table``, ``report``, ``load``, ...) read a fresh local copy,
  removed when the read ends (:func:`readable`, :func:`followed`: a :class:`Replica` in a ``with``).

The staging copy outlives its launch, for ``SweepResult.path`` to read, and is removed when the
process exits once all of it is up; a copy whose last upload failed holds runs the URI lacks, so it
stays and the error names it (:func:`staged`).

The driver lock on object storage: there are no locks there, so the rule is the heartbeat.
A launch refuses a URI whose ``driver.json`` says ``running`` with a heartbeat younger than
``FRESH_S`` (the uploader refreshes it there every 2 s while the driver's process lives, even
through a run longer than that on the local backend, which holds up the driver's own): at most one
driver per experiment, and a killed driver's folder can be resumed ``FRESH_S`` seconds later.
Credentials and the endpoint come from the usual variables (``AWS_ENDPOINT_URL`` included).

Runs on other machines (a Ray cluster's workers) never see the driver's staging folder: each run
puts its own artifact folder under the URI (:func:`put_folder`) and reads the declared components
the driver made (metadata records, shared jobs' outputs) from it (:func:`fetch`), with the driver's
storage variables (:func:`storage_env`), which travel with the run's context, set meanwhile.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sweeper.errors import StorageError, SweeperError

URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
EVERY_S = 1.0
COPY_OF = ".copy-of"  # in a local copy of a URI: its driver's liveness is the heartbeat's (lock.py)
# lock.py's DRIVER_JSON and HEARTBEAT_S, not imported: lock.py reads COPY_OF from here
HEARTBEAT, BEAT_S = "driver.json", 2.0
SKIP = ("driver.lock", COPY_OF)  # a local flock means nothing in a bucket
# What S3 clients (pyarrow's included) read from the environment; paths (AWS_PROFILE's config,
# AWS_CA_BUNDLE) would name files on the driver, so they stay behind.
STORAGE_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_EC2_METADATA_DISABLED",
)
_ENV_LOCK = threading.Lock()


def is_uri(path: str | Path) -> bool:
    return isinstance(path, str) and bool(URI_RE.match(path))


def join(uri: str, name: str) -> str:
    return uri.rstrip("/") + "/" + name


PYARROW_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "file", "abfs", "abfss")  # pyarrow.fs's own


def _filesystem(uri: str) -> tuple[Any, str]:
    """The pyarrow file system and path of ``uri``: pyarrow.fs's own for its schemes, any other
    through fsspec (``az://``, ``memory://``, ``http://``, ...) when it is installed."""
    from pyarrow import fs

    scheme = uri.split("://", 1)[0].lower()
    try:
        filesystem, path = fs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow's errors name neither the option nor the fix
        if scheme not in PYARROW_SCHEMES:
            return _fsspec(uri, scheme, exc)
        raise SweeperError(
            f"{uri}: cannot open this results URI ({exc})"
            "\n  fix: use s3://bucket/prefix, gs://bucket/prefix or another pyarrow.fs URI; for S3 set"
            " AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION (and AWS_ENDPOINT_URL)"
        ) from None
    return filesystem, str(path).rstrip("/")


def _fsspec(uri: str, scheme: str, why: Exception) -> tuple[Any, str]:
    """A URI pyarrow.fs cannot open, through fsspec's file system for its scheme, wrapped for pyarrow."""
    try:
        import fsspec
    except ImportError:
        raise SweeperError(
            f"{uri}: pyarrow.fs cannot open {scheme}:// URIs ({why})"
            "\n  fix: pip install fsspec (and the fsspec package for this scheme), or use s3://, gs://,"
            " hdfs:// or file://"
        ) from None
    from pyarrow import fs

    try:
        filesystem, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its package is missing
        raise SweeperError(
            f"{uri}: neither pyarrow.fs nor fsspec can open {scheme}:// URIs ({exc})"
            "\n  fix: install the fsspec package for this scheme (e.g. adlfs for az://, sshfs for ssh://),"
            " or use s3://, gs://, hdfs:// or file://"
        ) from None
    return fs.PyFileSystem(fs.FSSpecHandler(filesystem)), str(path).rstrip("/")


def storage_env() -> tuple[tuple[str, str], ...]:
    """This process's storage variables that are set, for runs that write to the same URI elsewhere."""
    return tuple((k, os.environ[k]) for k in STORAGE_VARIABLES if k in os.environ)


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set while inside, and as it was after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _environ(env: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """The driver's storage variables while a worker talks to the store (its own ones come back after)."""
    if not env:
        yield
        return
    with _ENV_LOCK, environ(dict(env)):
        yield


def put_folder(folder: Path, uri: str, env: tuple[tuple[str, str], ...] = ()) -> None:
    """Put every file under ``folder`` at ``uri/<relative path>`` (one PUT each, so each is whole)."""
    with _environ(env):
        remote, path = _filesystem(uri)
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                target = f"{path}/{p.relative_to(folder).as_posix()}"
                remote.create_dir(target.rsplit("/", 1)[0], recursive=True)
                with remote.open_output_stream(target) as out:
                    out.write(p.read_bytes())


def fetch(uri: str, target: Path, env: tuple[tuple[str, str], ...] = ()) -> None:
    """Copy the file or folder at ``uri`` to ``target``: made whole beside it, then renamed into place."""
    from pyarrow import fs

    target.parent.mkdir(parents=True, exist_ok=True)
    part = Path(tempfile.mkdtemp(prefix=".fetch-", dir=target.parent))
    try:
        with _environ(env):
            remote, path = _filesystem(uri)
            info = remote.get_file_info(path)
            if info.type == fs.FileType.Directory:
                local = fs.LocalFileSystem()
                fs.copy_files(path, str(part / "x"), source_filesystem=remote, destination_filesystem=local)
            elif info.type == fs.FileType.File:
                with remote.open_input_stream(path) as src:
                    (part / "x").write_bytes(src.read())
            else:
                raise FileNotFoundError(f"{uri}: not there")
        if target.is_dir():
            shutil.rmtree(target)
        (part / "x").replace(target)
    finally:
        shutil.rmtree(part, ignore_errors=True)


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


@contextlib.contextmanager
def readable(path: str | Path) -> Iterator[Path]:
    """The results folder ``path`` to read in the block: itself, or a fresh local copy of a URI,
    removed when the block ends (an error and Ctrl-C included)."""
    if not is_uri(path):
        yield Path(path)
        return
    with Replica(str(path)) as replica:
        yield replica.pull().folder


@contextlib.contextmanager
def followed(path: str) -> Iterator[tuple[str, Callable[[], None] | None]]:
    """A results folder to watch in the block: ``path`` itself, or a local copy of a URI and what
    refreshes it, removed when the block ends."""
    if not is_uri(path):
        yield path, None
        return
    with Replica(path) as replica:
        replica.pull()
        yield str(replica.folder), replica.refresh


class Replica:
    """A local folder that follows the experiment folder at ``uri`` (``sweeper serve`` and
    ``sweeper dashboard`` on a URI): each :meth:`pull` gets what changed and drops what the bucket
    dropped (parts folded by compaction). Each file is written whole beside its place and renamed,
    so a reader never sees half a part; files this copy did not bring (a rendered report, the
    dashboard's journal) are left alone. ``artifacts/`` stays in the bucket: no view reads it.

    The copy lives in a temporary folder of its own until :meth:`close`, which a ``with`` block
    calls at its end."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")
        self.remote, self.path = _filesystem(self.uri)
        self._root = Path(tempfile.mkdtemp(prefix="sweeper-read-"))
        self.folder = self._root / self.uri.rsplit("/", 1)[-1]
        try:
            self.folder.mkdir()
            (self.folder / COPY_OF).write_text(self.uri + "\n", encoding="utf-8")
        except BaseException:
            self.close()
            raise
        self._got: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) in the bucket
        self._warned = False

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the copy."""
        shutil.rmtree(self._root, ignore_errors=True)

    def pull(self) -> Replica:
        from pyarrow import fs

        try:
            infos = self.remote.get_file_info(
                fs.FileSelector(self.path, recursive=True, allow_not_found=True)
            )
            now = {
                i.path[len(self.path) + 1 :]: (i.size, i.mtime_ns or 0)
                for i in infos
                if i.type == fs.FileType.File and not i.path[len(self.path) + 1 :].startswith("artifacts/")
            }
            if not self._got and "experiment.json" not in now:
                raise SweeperError(
                    f"{self.uri}: no results there\n  fix: pass RESULTS/<experiment>, e.g."
                    " s3://bucket/x/quickstart"
                )
            for rel, sig in sorted(now.items(), key=lambda kv: not kv[0].endswith(".json")):
                if self._got.get(rel) != sig:  # records first: a part never lands before its schema
                    self._get(rel)
                    self._got[rel] = sig
        except OSError as exc:
            raise SweeperError(
                f"{self.uri}: cannot read it ({exc})\n  fix: check the credentials and endpoint"
            ) from None
        for rel in [r for r in self._got if r not in now]:
            (self.folder / rel).unlink(missing_ok=True)
            del self._got[rel]
        return self

    def refresh(self) -> None:
        """:meth:`pull` for a view that keeps running: a failure keeps the last copy and warns once."""
        try:
            self.pull()
        except SweeperError as exc:
            if not self._warned:
                self._warned = True
                print(f"warning: {exc}; showing the last copy, retrying", file=sys.stderr)
        else:
            self._warned = False

    def _get(self, rel: str) -> None:
        target = self.folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(f".{target.name}.part")
        with self.remote.open_input_stream(f"{self.path}/{rel}") as src:
            part.write_bytes(src.read())
        part.replace(target)


class Uploader:
    """Streams a local experiment folder to its URI from a thread: changed files up, dropped files removed."""

    def __init__(self, folder: Path, uri: str):
        self.folder, self.uri = folder, uri
        self.remote, self.path = _filesystem(uri)
        self._sent: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) put
        self._stop = threading.Event()
        self._warned = False
        self._beat_at = 0.0
        self._pushing = threading.Lock()  # the thread's pushes and the driver's own (after components)
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
        with self._pushing:
            self._push()

    def _push(self) -> None:
        now = self._scan()
        for rel, sig in sorted(now.items(), key=_push_order):
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

    def _beat(self) -> None:
        """Keep the bucket's heartbeat fresh while this process lives: the driver writes its own only
        between runs, and a run on the local backend may take longer than FRESH_S (a bucket has no
        flock to say the driver is alive)."""
        if time.monotonic() - self._beat_at < BEAT_S:
            return
        rec = self._running_heartbeat()
        if rec is None:
            return
        rec["heartbeat_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._pushing:
            self._put_heartbeat(rec)
        self._beat_at = time.monotonic()

    def _running_heartbeat(self) -> dict[str, Any] | None:
        """The local heartbeat record, when it says the driver is running (else there is nothing to say)."""
        import json

        try:
            rec = json.loads((self.folder / HEARTBEAT).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return rec if isinstance(rec, dict) and rec.get("state") == "running" else None

    def _put_heartbeat(self, rec: dict[str, Any]) -> None:
        import json

        with self.remote.open_output_stream(f"{self.path}/{HEARTBEAT}") as out:
            out.write(json.dumps(rec, indent=2).encode())

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_S):
            try:
                self.push()
                self._beat()
            except Exception as exc:  # retried next second and at the end
                if not self._warned:
                    self._warned = True
                    print(f"\nwarning: upload to {self.uri} failed ({exc}); retrying", file=sys.stderr)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.push()

    def release(self) -> None:
        """The driver's process ends: a heartbeat it left saying ``running`` (it could not write its
        end state: a full disk) would make the bucket refuse a resume for FRESH_S; say it exited."""
        rec = self._running_heartbeat()
        if rec is None:
            return
        rec.update(state="exited", running=0, queued=0)
        try:
            self._put_heartbeat(rec)
        except Exception as exc:  # every run is up already: only a resume's wait is at stake
            print(
                f"warning: {self.uri}: could not mark the driver exited ({exc}): every run is up, but a"
                " resume is refused until its heartbeat is stale (seconds)",
                file=sys.stderr,
            )


def _push_order(item: tuple[str, tuple[int, int]]) -> tuple[int, str]:
    """Trial-table parts after everything else (a row's component links and curve are up before it,
    as they are on disk before it), records last (a part never lands before its schema)."""
    rel = item[0]
    return (2 if rel.endswith(".json") else 1 if rel.startswith("trials/") else 0), rel


@contextlib.contextmanager
def staged(uri: str, name: str, check: Callable[[Path, str], None]) -> Iterator[Uploader]:
    """A local folder ``<root>/name`` that mirrors ``uri/name``: downloaded first, then streamed up by
    the uploader yielded (its ``folder``). ``check(folder, uri)`` runs on what was downloaded before
    anything is written (the lock rule).

    The folder outlives the block, for the launch's result to read (``SweepResult.path``), and is
    removed when this process exits, once the uploader's last push put all of it up. When that push
    fails the folder holds runs the URI may lack: it stays, and the :class:`StorageError` raised
    names it."""
    target = join(uri, name)
    root = Path(tempfile.mkdtemp(prefix="sweeper-results-"))
    folder = root / name
    try:
        had = download(target, folder)
        if had:
            check(folder, target)
            print(f"sweeper: resuming from {target}", file=sys.stderr)
        folder.mkdir(parents=True, exist_ok=True)
        up = Uploader(folder, target).start(already_up=had)
    except BaseException:  # nothing was written here yet: the URI has all of it
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        yield up
    finally:
        _finish(up, root)


def _finish(up: Uploader, root: Path) -> None:
    """End ``up``'s upload of the staging copy in ``root``: removed at exit when all of it is up,
    kept and named when not."""
    try:
        up.close()
    except Exception as exc:  # pyarrow's OSError, or whatever an fsspec file system raises
        raise StorageError(
            f"{up.uri}: the last upload failed ({exc}), so it may lack the last runs: every recorded run"
            f" is kept in {up.folder} (the local staging copy, left in place)"
            f"\n  fix: check the credentials and endpoint, copy that folder to {up.uri} (for S3:"
            f" aws s3 sync {up.folder} {up.uri} --exclude driver.lock), then resume with the same launch"
        ) from None
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    up.release()
