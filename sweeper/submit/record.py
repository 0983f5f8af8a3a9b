"""``submission.json``: what was submitted where, kept in the experiment's results folder.

``sweeper status`` and ``sweeper cancel DIR`` read it to find the Slurm job or Ray Job behind a
results folder, so they work from any shell on the cluster's shared filesystem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD = "submission.json"


@dataclass(frozen=True, slots=True)
class Submission:
    kind: str  # "slurm" | "ray-job"
    job_id: str
    folder: str  # the experiment's results folder (local path or URI)
    log: str = ""  # where the job's own output lands
    script: str = ""  # the sbatch script (slurm)
    address: str = ""  # the Ray dashboard address (ray-job)
    submitted_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    options: Mapping[str, Any] = field(default_factory=dict)
    cancelled_at: str | None = None


def save(record: Submission, folder: Path) -> Path:
    from sweeper.results.table import write_json

    path = Path(folder) / RECORD
    write_json(path, asdict(record))
    return path


def load(folder: str | Path) -> Submission | None:
    """The record in ``folder``, or None when the sweep there was not submitted to a cluster."""
    from sweeper.results.table import read_json

    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    data = read_json(path)
    known = set(Submission.__dataclass_fields__)
    return Submission(**{k: v for k, v in data.items() if k in known})
