"""``sweeper rerun DIR TRIAL``: one recorded run again, in the foreground, in this process.

Debugging by isolation: the run gets exactly the variables, seed (and seed factors' seeds), declared
components and command it had, so breakpoints and prints work and a deterministic objective gives the
recorded metrics bit for bit. Nothing is written into the results folder unless ``record`` is given
(the rerun's files go to a temporary folder); with it, the rerun's row replaces the recorded one as a
new attempt.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import ObjectiveError, SweeperError, command

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.run.types import Outcome, Run, RunContext
    from sweeper.spec.experiment import Experiment


@dataclass(frozen=True, slots=True)
class Rerun:
    """A rerun's outcome beside the row it repeats; ``matches``: every metric equal, bit for bit."""

    run: Run
    outcome: Outcome
    recorded: dict[str, Any]  # the row as the table holds it
    files: Path  # where the rerun's artifacts and logs went (gone when it wrote none)

    @property
    def matches(self) -> bool:
        return self.outcome.status == self.recorded["status"] and all(
            _same(self.recorded.get(m), self.outcome.metrics.get(m)) for m in self.recorded["_metrics"]
        )


def rerun(
    folder: str | Path, trial: int, replicate: int = 0, *, record: bool = False, pdb: bool = False
) -> Rerun:
    """Run ``trial``/``replicate`` of a results folder again, here; see the module docstring."""
    from sweeper.results.table import check_results_folder, load, read_spec
    from sweeper.run.types import Run, RunContext
    from sweeper.search.seeds import seed_column

    folder = check_results_folder(folder).resolve()
    spec = read_spec(folder)
    table = load(folder)
    rows = table[(table["trial"] == trial) & (table["replicate"] == replicate)] if len(table) else table
    if rows.empty:
        have = sorted(set(table["trial"].tolist())) if len(table) else []
        span = f"trials {have[0]}..{have[-1]}" if have else "no runs"
        raise SweeperError(
            f"{folder}: trial {trial} replicate {replicate} is not in the trial table ({span})"
            f"\n  fix: pick a recorded run: `{command('table', folder)}` lists the trials"
        )
    row = rows.iloc[-1]
    factor_seeds = tuple(
        (seed_column(f.name), int(row[seed_column(f.name)]))
        for f in spec.factors
        if _plain(row.get(seed_column(f.name))) is not None
    )
    run = Run(trial, replicate, int(row["seed"]), _params(spec, row), int(row["attempt"]) + 1, factor_seeds)
    metrics = tuple(m.name for m in spec.metrics)
    files = folder if record else Path(tempfile.mkdtemp(prefix=f"sweeper-rerun-{spec.name}-"))
    ref = RunContext(
        spec.objective or "",
        spec.root,
        metrics,
        folder=str(files),
        command=spec.command,
        timeout=spec.timeout,
        inputs=_inputs(spec, folder),
    )
    outcome = _execute(ref, run, pdb)
    if outcome.fatal:  # not the run's result: the objective cannot be called here at all
        raise ObjectiveError(f"{folder}: {outcome.error}")
    if not record and not any(files.iterdir()):
        files.rmdir()  # the run wrote no artifacts or logs: leave nothing behind
    recorded = {k: _plain(v) for k, v in row.to_dict().items()}
    recorded["_metrics"] = list(metrics)
    if record:
        _record(folder, spec, recorded, outcome)
    return Rerun(run, outcome, recorded, files)


def _params(spec: Experiment, row: pd.Series) -> dict[str, Any]:
    """The run's variables as the objective got them: active ones only, in their own types (a
    mixed-type choice is stored as text and mapped back to the choice it names)."""
    params: dict[str, Any] = {}
    for v in spec.variables:
        value = _plain(row.get(v.name))
        if value is None:
            continue  # inactive conditional variable: not passed
        if v.kind == "choice":
            value = next((c for c in v.choices if c == value and type(c) is type(value)), None) or next(
                (c for c in v.choices if str(c) == str(value)), value
            )
        elif v.kind == "int":
            value = int(value)
        elif v.kind == "float":
            value = float(value)
        elif v.kind == "const":
            value = v.value
        params[v.name] = value
    return params


def _inputs(spec: Experiment, folder: Path) -> tuple[tuple[str, str], ...]:
    """The declared components' paths as the recorded runs got them; refused when content changed."""
    from urllib.parse import unquote, urlparse

    from sweeper.results.components import COMPONENTS, hash_path
    from sweeper.results.table import read_json

    if not spec.components:
        return ()
    state_path = folder / COMPONENTS / "inputs.json"
    state = read_json(state_path).get("inputs", {}) if state_path.is_file() else {}
    out = []
    for c in spec.components:
        rec = state.get(c.name, {})
        path = rec.get("path") or (unquote(urlparse(rec["uri"]).path) if rec.get("uri") else None)
        if path is None or not Path(path).exists():
            raise SweeperError(
                f"{folder}: component {c.name!r} of the recorded runs is not there ({path})"
                "\n  fix: relaunch the sweep once (it prepares its components), then rerun"
            )
        if rec.get("sha256") and hash_path(Path(path))[0] != rec["sha256"]:
            raise SweeperError(
                f"{folder}: component {c.name!r} ({path}) changed since the recorded runs used it"
                "\n  fix: restore its content, or the rerun would not repeat the run"
            )
        out.append((c.name, path))
    return tuple(out)


def _execute(ref: RunContext, run: Run, pdb: bool) -> Outcome:
    """The run, here, through the same code a worker runs. With ``pdb``, an exception the objective
    raises stops in the debugger at its frame first (then it is the failed run it is)."""
    from sweeper.run import objective

    if not pdb or ref.command is not None:
        (outcome,) = objective.execute(ref, [run], node="rerun")
        return outcome
    import functools
    import pdb as debugger
    import sys

    func = objective.load_objective(ref)

    @functools.wraps(func)  # keeps the signature the call inspects (seed, trial, components)
    def debugged(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            if type(exc).__name__ != "TrialPruned":
                debugger.post_mortem(sys.exc_info()[2])
            raise

    key = (ref.target, ref.root)
    objective._cache[key] = debugged  # the loader's cache: execute() then calls this wrapper
    try:
        (outcome,) = objective.execute(ref, [run], node="rerun")
    finally:
        objective._cache[key] = func
    return outcome


def _record(folder: Path, spec: Experiment, recorded: dict[str, Any], outcome: Outcome) -> None:
    """Append the rerun as the run's next attempt (the table keeps the last row per run)."""
    from sweeper.results.lock import DriverLock
    from sweeper.results.table import TRIALS, TableWriter, trial_schema

    row = {k: v for k, v in recorded.items() if not k.startswith("_")}
    for m in spec.metrics:
        row[m.name] = outcome.metrics.get(m.name)
    row.update(outcome.columns())
    schema = trial_schema(spec)
    lock = DriverLock(folder).acquire()
    try:
        writer = TableWriter(folder / TRIALS, schema)
        writer.append([{k: row.get(k) for k in schema.names}])
        writer.flush()
    finally:
        lock.release()


def _plain(value: Any) -> Any:
    import pandas as pd

    if value is None or (not isinstance(value, str | list | dict) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return int(value.value // 1000)
    return value.item() if hasattr(value, "item") else value


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    fa, fb = float(a), float(b)
    return (math.isnan(fa) and math.isnan(fb)) or fa == fb


def describe(r: Rerun, *, written: bool) -> str:
    """What ``sweeper rerun`` prints: the run, each metric then and now, the verdict, and where the
    rerun went (``written``: into the table as a new attempt, as ``--record`` asks)."""
    o, rec = r.outcome, r.recorded
    lines = [f"trial {r.run.trial} replicate {r.run.replicate}: seed {r.run.seed}, {r.run.params}"]
    lines.append(f"  status: recorded {rec['status']}, now {o.status} ({o.ended - o.started:.3g}s)")
    for m in rec["_metrics"]:
        then, now = rec.get(m), o.metrics.get(m)
        same = "same" if _same(then, now) else "DIFFERS"
        lines.append(f"  {m}: recorded {then!r}, now {now!r}  {same}")
    if o.error:
        lines.append("  error:\n" + "\n".join("    " + line for line in o.error.rstrip().splitlines()))
    lines.append("matches the recorded row bit for bit" if r.matches else "does not match the recorded row")
    if written:
        lines.append(f"recorded as attempt {r.run.attempt} of this run in {r.files}")
    else:
        kept = f"; its files are in {r.files}" if r.files.exists() else ""
        lines.append(f"nothing was written to the results folder (--record writes the rerun there){kept}")
    return "\n".join(lines) + "\n"
