"""An objective whose import makes warm actors come up one after another, as Ray starts a node's
workers a few at a time: the first import holds a lock for a while after it ends, so the second
worker's import ends STAGGER_S after the first's."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
import time

FIRST_S = 5.0  # the first actor comes up this long after its import began
STAGGER_S = 8.0  # and the second this long after the first

_LOCK = os.path.join(
    tempfile.gettempdir(), f"sweeper-slow-start-{hashlib.sha256(__file__.encode()).hexdigest()[:12]}.lock"
)
_fh = open(_LOCK, "a")  # noqa: SIM115  # held for the life of the worker, released by the timer
try:
    fcntl.flock(_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:  # another worker imports first: wait until it lets go
    fcntl.flock(_fh, fcntl.LOCK_EX)
    fcntl.flock(_fh, fcntl.LOCK_UN)
else:
    time.sleep(FIRST_S)
    threading.Timer(STAGGER_S, fcntl.flock, (_fh, fcntl.LOCK_UN)).start()


def value(x: float) -> float:
    return x
