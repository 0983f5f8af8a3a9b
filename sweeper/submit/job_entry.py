"""What a Ray Job runs on the cluster (``sweeper job SWEEP --results RESULTS``): the sweep driver,
writing results to a path or a URI.

- A path: the driver writes there directly (a volume the head mounts).
- A URI (``s3://``, ``gs://``, ``file://``, anything ``pyarrow.fs`` reads): the driver writes to a
  local staging folder that starts as a copy of what the URI already holds (so a resubmitted
  sweep resumes), and the folder is copied up every ``upload_every`` seconds and at the end.

SIGTERM is turned into the driver's Ctrl-C stop, so finished runs are written before the job ends.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.api import SweepResult


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _filesystem(uri: str) -> tuple[Any, str]:
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    return filesystem, str(path)


def download(uri: str, folder: Path) -> bool:
    """Copy ``uri`` (an experiment folder) into ``folder``; False when there is nothing there yet."""
    from pyarrow import fs

    remote, path = _filesystem(uri)
    if remote.get_file_info(path).type != fs.FileType.Directory:
        return False
    fs.copy_files(path, str(folder), source_filesystem=remote, destination_filesystem=fs.LocalFileSystem())
    return True


def upload(folder: Path, uri: str) -> None:
    from pyarrow import fs

    if not folder.is_dir():
        return
    remote, path = _filesystem(uri)
    remote.create_dir(path, recursive=True)
    fs.copy_files(str(folder), path, source_filesystem=fs.LocalFileSystem(), destination_filesystem=remote)


def run_job(sweep_file: str, results: str, *, upload_every: float = 30.0) -> SweepResult:
    """Run the sweep on the job's Ray cluster (``address="auto"``), results to ``results``."""
    from sweeper.api import launch
    from sweeper.spec.model import load_spec

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ray blocks/ignores it in some setups

    def run(where: str) -> SweepResult:
        return launch(sweep_file, results=where, backend="ray", address="auto", progress=True)

    if "://" not in results:
        return run(results)
    name = load_spec(sweep_file).name
    uri = results.rstrip("/") + "/" + name
    staging = Path(tempfile.mkdtemp(prefix="sweeper-results-"))
    if download(uri, staging / name):
        print(f"sweeper: resuming from {uri}", file=sys.stderr)
    stop = threading.Event()

    def keep_uploading() -> None:
        while not stop.wait(upload_every):
            try:
                upload(staging / name, uri)
            except Exception as exc:  # a failed upload is retried next round and at the end
                print(f"sweeper: upload to {uri} failed ({exc}); retrying", file=sys.stderr)

    uploader = threading.Thread(target=keep_uploading, daemon=True)
    uploader.start()
    try:
        return run(str(staging))
    finally:
        stop.set()
        uploader.join()
        upload(staging / name, uri)
        print(f"sweeper: results uploaded to {uri}", file=sys.stderr)
