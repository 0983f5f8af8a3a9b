"""Where a launch's time goes (``sweeper launch --profile``): start-up, the runs, and the way out.

Ray's start overlaps the driver's own preparation, so the phases do not add up to the total; each
phase is shown with its length and the time since launch at which it ended.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(slots=True)
class Profile:
    started: float = field(default_factory=time.time)
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (start, end)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        begin = time.time()
        try:
            yield
        finally:
            self.note(name, begin, time.time())

    def note(self, name: str, begin: float, end: float) -> None:
        self.phases[name] = (begin, end)

    def format(self, first_run: float | None, last_run: float | None) -> str:
        """One line a phase: its seconds, and when it ended (seconds since launch)."""
        rows = dict(self.phases)
        if first_run is not None and last_run is not None:  # this launch ran something
            rows["first run"] = (self.started, first_run)
            rows["last run"] = (first_run, last_run)
        order = sorted(rows.items(), key=lambda kv: kv[1][1])
        lines = ["profile: phase, seconds, ended at (s since launch)"]
        lines += [
            f"  {name:<12} {end - begin:8.3f} {end - self.started:9.3f}" for name, (begin, end) in order
        ]
        lines.append(f"  {'total':<12} {time.time() - self.started:8.3f}")
        return "\n".join(lines)
