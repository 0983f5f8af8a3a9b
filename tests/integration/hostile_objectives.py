"""Objectives that misbehave on purpose, for the hostile-input and fault tests."""

from __future__ import annotations

import sys


def exits(mode: str) -> float:
    """``sys.exit`` from inside a run, with the codes users write."""
    if mode == "exit0":
        sys.exit(0)
    if mode == "exit5":
        raise SystemExit(5)
    return 1.0


def huge(x: int) -> dict[str, int]:
    """An integer metric far beyond a float's range for one trial only."""
    return {"value": 10**400 if x == 1 else x}


def total(**values: int) -> float:
    """Any number of int variables: their sum."""
    return float(sum(values.values()))


RUNS = [0]


def storage_fault(x: float, y: int, kind: str) -> float:
    """Run on the local backend (in the driver's process): at run ``FAULT_AT`` the results folder
    fails. ``FAULT=readonly`` makes ``FAULT_DIR`` (the trials/ folder) read-only; ``FAULT=full`` caps
    the size of any file this process writes at 0 bytes (RLIMIT_FSIZE, SIGXFSZ ignored): every later
    write fails with EFBIG, as every write does on a full disk (ENOSPC)."""
    import os
    import resource
    import signal
    import time

    RUNS[0] += 1
    if RUNS[0] == int(os.environ["FAULT_AT"]):
        if os.environ["FAULT"] == "readonly":
            os.chmod(os.environ["FAULT_DIR"], 0o555)
        else:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    time.sleep(0.1)  # 10+ runs before the fault: the table's first part (flushed each second) is written
    return x + y
