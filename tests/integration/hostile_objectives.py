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
    """The results folder fails mid-sweep. ``FAULT=readonly`` makes ``FAULT_DIR`` (the trials/
    folder) read-only at this process's run ``FAULT_AT``; ``FAULT=full`` (the local backend: in the
    driver's process) then caps the size of any file this process writes at 0 bytes (RLIMIT_FSIZE,
    SIGXFSZ ignored), so every later write fails with EFBIG, as on a full disk. ``FAULT=enospc``
    fills the (small tmpfs) file system holding the results with ``FAULT_FILL`` once the table has
    a part, from whichever process claims the ``FAULT_ARM`` file first (Ray workers outlive a
    launch and count runs apart), so every later write fails with ENOSPC."""
    import os
    import resource
    import signal
    import time
    from pathlib import Path

    RUNS[0] += 1
    if os.environ["FAULT"] == "enospc":
        if any(Path(os.environ["FAULT_DIR"]).glob("part-*.parquet")):
            try:
                os.rename(os.environ["FAULT_ARM"], os.environ["FAULT_ARM"] + ".fired")
            except FileNotFoundError:  # fired already, or not armed
                pass
            else:
                with open(os.environ["FAULT_FILL"], "ab", buffering=0) as fill:
                    try:
                        while fill.write(b"\0" * (1 << 20)):
                            pass
                    except OSError:  # ENOSPC: the file system is full
                        pass
    elif RUNS[0] == int(os.environ["FAULT_AT"]):
        if os.environ["FAULT"] == "readonly":
            os.chmod(os.environ["FAULT_DIR"], 0o555)
        else:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    time.sleep(0.1)  # 10+ runs before the fault: the table's first part (flushed each second) is written
    return x + y
