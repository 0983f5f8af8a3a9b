"""Follow a sweep that runs elsewhere by reading its trial table: the local progress line, remotely.

The driver on the cluster appends Parquet parts as runs finish; on a shared filesystem this process
reads the same folder, rebuilds the counts the engine would show and prints the same line, with the
job's state appended. Nothing here talks to the driver, so following can start, stop and restart
at any time.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sweeper.engine.loop import Stats
from sweeper.spec.experiment import Experiment


def table_stats(folder: Path, spec: Experiment, trials_total: int) -> Stats:
    """The engine's counters, rebuilt from the trial table in ``folder`` (empty while none is there)."""
    from sweeper.errors import SweeperError
    from sweeper.results.table import load
    from sweeper.results.values import best_trial

    stats = Stats(trials_total, spec.replicates)
    stats.running, stats.queued = _in_flight(folder)
    try:
        df = load(folder)
    except SweeperError:  # no parts yet, or a part being renamed into place: try again later
        return stats
    if df.empty:
        return stats
    stats.runs_done = len(df)
    stats.counts = {str(k): int(v) for k, v in df["status"].value_counts().items()}
    per_trial = df.groupby("trial").size()
    stats.trials_done = int((per_trial >= spec.replicates).sum())
    stats.started = float(df["started_at"].min().timestamp())
    best = best_trial(df, spec)  # the one definition sweeper status and the API use
    if best is not None:
        stats.best_trial, stats.best_value = best["trial"], best["mean"]
    return stats


def _in_flight(folder: Path) -> tuple[int, int]:
    """Runs running and queued, from the heartbeat the driver rewrites every few seconds."""
    import json

    try:
        data = json.loads((folder / "driver.json").read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return int(data.get("running", 0)), int(data.get("queued", 0))
    except (OSError, ValueError, TypeError):
        pass
    return 0, 0


def follow(
    folder: Path,
    spec: Experiment,
    poll: Callable[[], tuple[str, bool]],
    *,
    interval_s: float = 2.0,
    stream: TextIO | None = None,
) -> tuple[str, Stats]:
    """Print progress until ``poll()`` says the job is no longer active; return (state, stats).

    ``poll`` returns the job's state in words and whether it is still active (pending or running).
    On a terminal the line is redrawn in place; elsewhere a plain line is printed every 10 s and
    whenever the state changes.
    """
    from sweeper.engine.progress import line
    from sweeper.search.searcher import budget

    stream = stream or sys.stderr
    tty = stream.isatty()
    total = budget(spec)
    last_text, last_print, width = "", 0.0, 0
    while True:
        state, active = poll()
        stats = table_stats(folder, spec, total)
        text = f"{line(stats, spec.primary.name)} | {state}" if stats.runs_done else state
        now = time.monotonic()
        if tty:
            stream.write("\r" + text.ljust(width))
            width = len(text)
        elif text.rsplit("|", 1)[-1] != last_text.rsplit("|", 1)[-1] or now - last_print >= 10:
            stream.write(text + "\n")
            last_print = now
        stream.flush()
        last_text = text
        if not active:
            if tty:
                stream.write("\n")
            return state, stats
        time.sleep(interval_s)
