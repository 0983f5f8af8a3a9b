"""Slurm options: one frozen record, read from a profile, a ``slurm:`` block or the CLI.

Layers merge field by field, later ones winning: profile (``cluster/slurm/<name>.yaml``) <
``slurm:`` block < command-line flags. Every value that ends up in an ``#SBATCH`` line is checked
here against a strict pattern (sbatch reads those lines itself, outside any shell quoting), so a
hostile value is refused with the rule and the fix instead of reaching the script.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeper.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9_.+-]+(,[A-Za-z0-9_.+-]+)*$")  # partition, account, qos lists
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")
_MEM = re.compile(r"^\d+[KMGT]?$")
_GPUS = re.compile(r"^(?:[A-Za-z0-9_.-]+:)?\d+$")  # 2, or a100:2
_CONSTRAINT = re.compile(r"^[A-Za-z0-9_.:,|&!()\[\]*-]+$")
_SBATCH_ARG = re.compile(r"^--[a-z][a-z-]*(?:=[A-Za-z0-9_.:,|&!()\[\]*/@%+=-]+)?$")


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """What a Slurm sweep job asks for; ``None`` means "not set at this layer" (see resolved())."""

    nodes: int | None = None
    partition: str | None = None
    time: str | None = None  # Slurm's formats: MM, HH:MM:SS, D-HH, D-HH:MM:SS ...
    cpus_per_node: int | None = None  # also what each Ray node advertises
    gpus_per_node: str | None = None  # "2" or "a100:2"
    mem_per_node: str | None = None  # "64G"
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    requeue: bool | None = None  # resubmit on preemption / time limit, resume from the table
    grace_s: int | None = None  # Slurm signals the job this long before its time limit
    ray_wait_s: int | None = None  # how long to wait for every Ray node to join
    python: str | None = None  # interpreter on the cluster; default: the one submitting
    setup: tuple[str, ...] | None = None  # shell lines run first (module load, venv activate)
    sbatch: tuple[str, ...] | None = None  # more sbatch options, e.g. --exclusive, --reservation=R
    profile: str | None = None  # a file in cluster/slurm/ to start from

    def merged(self, over: SlurmOptions) -> SlurmOptions:
        """This layer overridden by every field that ``over`` sets."""
        changes = {
            f.name: getattr(over, f.name)
            for f in dataclasses.fields(over)
            if getattr(over, f.name) is not None
        }
        return dataclasses.replace(self, **changes)

    def resolved(self) -> SlurmOptions:
        """Defaults filled in for fields no layer set."""
        return SlurmOptions(nodes=1, requeue=True, grace_s=120, ray_wait_s=300, setup=(), sbatch=()).merged(
            self
        )

    def time_s(self) -> int | None:
        """The time limit in seconds, or None when unset or unlimited."""
        if self.time is None or self.time.upper() in ("UNLIMITED", "INFINITE"):
            return None
        return _time_seconds(self.time)


FIELDS = tuple(f.name for f in dataclasses.fields(SlurmOptions))


def parse_options(data: Any, *, source: str, where: str = "slurm") -> SlurmOptions:
    """Validate a ``slurm:`` mapping (sweep file block, profile file, or the CLI's flags)."""

    def fail(key: str, message: str, fix: str) -> SpecError:
        return SpecError(message, source=source, field=f"{where}.{key}" if key else where, fix=fix)

    if data is None:
        return SlurmOptions()
    if not isinstance(data, Mapping):
        raise fail(
            "",
            f"expected a mapping, got {type(data).__name__}",
            f"write key: value pairs; keys: {', '.join(FIELDS)}",
        )
    values: dict[str, Any] = {}
    for key, value in data.items():
        key = str(key).replace("-", "_")
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise fail(key, "unknown key", f"{hint}valid keys: {', '.join(FIELDS)}")
        if value is None:
            continue
        values[key] = _check(key, value, fail)
    return SlurmOptions(**values)


def _check(key: str, value: Any, fail: Any) -> Any:
    if key in ("nodes", "cpus_per_node", "grace_s", "ray_wait_s"):
        low = 0 if key == "grace_s" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise fail(key, f"expected a whole number >= {low}, got {value!r}", f"write e.g. {key}: 2")
        return value
    if key == "requeue":
        if not isinstance(value, bool):
            raise fail(key, f"expected true or false, got {value!r}", "write requeue: true")
        return value
    if key in ("setup", "sbatch"):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(s, str) for s in items):
            raise fail(
                key,
                f"expected a list of text lines, got {value!r}",
                "write e.g. setup: [module load cuda/12.1, source ~/venv/bin/activate]",
            )
        if key == "sbatch":
            for arg in items:
                if not _SBATCH_ARG.match(arg):
                    raise fail(
                        key,
                        f"{arg!r} is not a plain --option or --option=value",
                        "write long options without spaces or quotes, e.g. --exclusive "
                        "or --reservation=gpu-week",
                    )
        return tuple(items)
    if key == "gpus_per_node" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if key == "time" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # minutes, as sbatch reads a bare number
    if not isinstance(value, str) or not value.strip():
        raise fail(key, f"expected text, got {value!r}", f"write e.g. {key}: {_EXAMPLES[key]}")
    value = value.strip()
    pattern = {
        "partition": _NAME,
        "account": _NAME,
        "qos": _NAME,
        "time": _TIME,
        "mem_per_node": _MEM,
        "gpus_per_node": _GPUS,
        "constraint": _CONSTRAINT,
    }.get(key)
    if key == "time" and value.upper() in ("UNLIMITED", "INFINITE"):
        return value
    if pattern is not None and not pattern.match(value):
        raise fail(
            key,
            f"{value!r} is not a valid {key.replace('_', ' ')}",
            f"write e.g. {key}: {_EXAMPLES[key]} (no spaces, quotes or shell characters)",
        )
    if key in ("python", "profile") and ("\n" in value or "\0" in value):
        raise fail(key, "contains a line break", "give a plain path or name")
    return value


_EXAMPLES = {
    "partition": "gpu",
    "account": "proj-123",
    "qos": "normal",
    "time": "2:00:00",
    "mem_per_node": "64G",
    "gpus_per_node": "4 or a100:4",
    "constraint": "a100",
    "python": "/home/me/venv/bin/python",
    "profile": "dev",
}


def _time_seconds(text: str) -> int:
    m = _TIME.match(text)
    if m is None:
        raise ValueError(text)
    days, a, b, c = (int(g) if g else None for g in m.groups())
    if days is None:  # MM, MM:SS, HH:MM:SS
        parts = [p for p in (a, b, c) if p is not None]
        if len(parts) == 1:
            return parts[0] * 60
        if len(parts) == 2:
            return parts[0] * 60 + parts[1]
        return parts[0] * 3600 + parts[1] * 60 + parts[2]
    # D-HH, D-HH:MM, D-HH:MM:SS
    return days * 86400 + (a or 0) * 3600 + (b or 0) * 60 + (c or 0)


def profile_dirs(sweep_file: Path | None = None) -> list[Path]:
    """Where profile names are looked up: ./cluster/slurm, near the sweep file, this checkout's."""
    dirs = [Path.cwd() / "cluster" / "slurm"]
    if sweep_file is not None:
        dirs += [p / "cluster" / "slurm" for p in Path(sweep_file).resolve().parents[:3]]
    dirs.append(Path(__file__).resolve().parents[2] / "cluster" / "slurm")
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def load_profile(name: str, *, sweep_file: Path | None = None) -> SlurmOptions:
    """A profile by file path or by name (``dev`` -> ``cluster/slurm/dev.yaml``)."""
    import yaml

    candidates = (
        [Path(name)]
        if name.endswith((".yaml", ".yml")) or "/" in name
        else [d / f"{name}.yaml" for d in profile_dirs(sweep_file)]
    )
    for path in candidates:
        if path.is_file():
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            options = parse_options(data, source=str(path), where="(profile)")
            if options.profile is not None:
                raise SpecError(
                    "a profile cannot name another profile",
                    source=str(path),
                    field="profile",
                    fix="copy the settings you need into this file",
                )
            return options
    looked = ", ".join(str(p) for p in candidates)
    raise SpecError(
        f"no Slurm profile {name!r}",
        source="slurm.profile",
        fix=f"create one of: {looked} (see cluster/slurm/README.md)",
    )


def combine(
    *, block: SlurmOptions | None, flags: SlurmOptions | None, sweep_file: Path | None = None
) -> SlurmOptions:
    """Profile < sweep file's ``slurm:`` block < flags, with defaults for what none of them set."""
    block = block or SlurmOptions()
    flags = flags or SlurmOptions()
    name = flags.profile or block.profile
    base = load_profile(name, sweep_file=sweep_file) if name else SlurmOptions()
    out = base.merged(block).merged(flags).resolved()
    limit = out.time_s()
    if out.requeue and limit is not None and out.grace_s and out.grace_s * 2 > limit:
        # Slurm warns the job grace_s before the end; a job warned before Ray and the driver are up
        # would requeue forever without finishing a run.
        raise SpecError(
            f"grace_s ({out.grace_s} s) must be at most half the time limit ({out.time})",
            source="slurm",
            field="grace_s",
            fix="lower grace_s or raise time (the job is told to stop grace_s early)",
        )
    return out
