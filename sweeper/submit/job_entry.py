"""What a Ray Job runs on the cluster (``sweeper job SWEEP --results RESULTS``): the sweep driver,
writing results to a path (a volume the head mounts) or a URI (``s3://``, ``gs://``, ``file://``).

A URI is :func:`sweeper.launch`'s own: the driver runs in a local copy of what the URI already
holds (so a resubmitted sweep resumes, under the lock rule) and streams each file up as it is
written (:mod:`sweeper.results.store`). SIGTERM is turned into the driver's Ctrl-C stop, so
finished runs are written (and uploaded) before the job ends.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sweeper.api import SweepResult


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_job(sweep_file: str, results: str) -> SweepResult:
    """Run the sweep on the job's Ray cluster (``address="auto"``), results to ``results``."""
    from sweeper.api import launch

    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ray blocks/ignores it in some setups
    return launch(sweep_file, results=results, backend="ray", address="auto", progress=True)
