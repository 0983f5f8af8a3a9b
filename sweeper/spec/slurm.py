"""Slurm options: one frozen record, read from a profile, a ``slurm:`` block or the CLI.

Layers merge field by field, later ones winning: profile (``cluster/slurm/<name>.yaml``) <
``slurm:`` block < command-line flags. Every value that ends up in an ``#SBATCH`` line is checked
against a strict pattern (by :class:`sweeper.spec.schema.Slurm`; sbatch reads those lines
itself, outside any shell quoting), so a hostile value is refused with the rule and the fix instead of
reaching the script.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sweeper.errors import SpecError
from sweeper.spec.experiment import SlurmOptions

__all__ = ["SlurmOptions", "combine", "load_profile", "parse_options", "profile_dirs"]


def parse_options(data: Any, *, source: str, where: str = "slurm") -> SlurmOptions:
    """Validate a ``slurm:`` mapping (a profile file or the CLI's flags) with the sweep file's model."""
    from pydantic import ValidationError

    from sweeper.spec.block import underscores
    from sweeper.spec.messages import spec_error
    from sweeper.spec.schema import Slurm

    if data is None:
        return SlurmOptions()
    try:
        block = Slurm.model_validate(underscores(data))
    except ValidationError as exc:
        raise spec_error(exc, source=source, marks={}, order={}, prefix=(where,)) from None
    return SlurmOptions(**block.model_dump(exclude_none=True))


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
