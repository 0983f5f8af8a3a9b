"""Resuming an experiment from its results folder: the trial table is the single source of truth.

``launch`` on a folder that already holds the same experiment continues it: replicates that
finished are not rerun, trials keep their ids, the Optuna study is rebuilt from the table, and runs
that were in flight when the driver died (they have no row) run again. Whether the folder holds
"the same experiment" is decided by a fingerprint of the parts that give the table its meaning.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, check_table, read_json
from sweeper.results.values import better, trial_value, trial_values

if TYPE_CHECKING:
    import pyarrow as pa

    from sweeper.search.racing import Race
    from sweeper.search.searcher import Searcher
    from sweeper.spec.model import Experiment

# Statuses a replicate is not rerun for unless asked (--retry-failed).
FAILED = frozenset({"failed", "timeout"})


def fingerprint(spec: Experiment) -> dict[str, Any]:
    """The parts of a spec that give the trial table its meaning, and their hash.

    Changing any of these makes old rows mean something else; raising ``trials`` or a fixed
    ``replicates``, adding a recorded metric, resources, timeouts and the hypothesis do not.
    """
    from sweeper.search.searcher import told_metrics

    told = told_metrics(spec)
    parts: dict[str, Any] = {
        "variables": [_variable(v) for v in spec.variables],
        "objective": spec.objective if spec.objective else _command(spec),
        "search method": spec.search.method,
        "searched metrics": [[m.name, m.direction] for m in told],
        "search seed": spec.search.seed,
    }
    # Racing decisions and the factorial's replicate-to-seeds map give rows their meaning too (only
    # named when used, so fixed-replicate fingerprints stay as they were).
    if spec.racing is not None:
        parts["racing"] = {"min": spec.racing.min, "max": spec.racing.max}
    if spec.factors:
        parts["seed factors"] = {f.name: f.n for f in spec.factors}
    return {"sha256": _hash(parts), "parts": parts}


def _command(spec: Experiment) -> Any:
    cmd = getattr(spec, "command", None)
    return {"command": list(cmd.argv), "shell": cmd.shell} if cmd is not None else None


def _variable(v: Any) -> dict[str, Any]:
    out = {"name": v.name, "kind": v.kind}
    for key in ("choices", "low", "high", "step", "log", "value", "when"):
        value = getattr(v, key)
        if value not in (None, (), False):
            out[key] = value
    plain: dict[str, Any] = json.loads(json.dumps(out, default=list))
    return plain


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def holds_experiment(folder: Path) -> bool:
    return (folder / EXPERIMENT_JSON).is_file() or (folder / TRIALS).is_dir()


def check_compatible(folder: Path, spec: Experiment, sweep_file: str | None = None) -> None:
    """Refuse to resume ``folder`` with a spec whose table would mean something else; name what changed."""
    path = folder / EXPERIMENT_JSON
    new_file = sweep_file or "the sweep file"
    if not path.is_file():
        raise SweeperError(
            f"{folder} holds a trials/ folder but no {EXPERIMENT_JSON}, so it cannot be resumed safely"
            f"\n  fix: pass --fresh to move it aside and start over, or restore {path}"
        )
    try:
        data = read_json(path)
    except SweeperError as exc:
        raise SweeperError(
            f"{exc}\n  fix: restore {path} from a backup, or relaunch with --fresh to move"
            " the folder aside and start over (its trial table is kept there)"
        ) from None
    if not isinstance(data, dict):
        raise SweeperError(
            f"{path}: not an experiment record (expected a JSON object)"
            "\n  fix: pass --fresh to move the folder aside and start over"
        )
    old = data.get("fingerprint")
    if not isinstance(old, dict) or not isinstance(old.get("parts"), dict):
        old = _fingerprint_of_record(path, data)
    new = fingerprint(spec)
    if old.get("sha256") == new["sha256"]:
        return
    changed = [k for k in new["parts"] if old["parts"].get(k) != new["parts"][k]] or ["fingerprint"]
    lines = [f"  {k}: was {_short(old['parts'].get(k))}, now {_short(new['parts'][k])}" for k in changed]
    raise SweeperError(
        f"{folder} holds experiment {spec.name!r} run with a different {', '.join(changed)}; "
        "its results would not mean the same thing, so it is not resumed:\n"
        + "\n".join(lines)
        + f"\n  fix: to start a new experiment, give it a new name (experiment: in {new_file});"
        " to start this one over, relaunch with --fresh (the old folder is moved aside, not deleted);"
        " to continue the old one, undo the change"
    )


def _fingerprint_of_record(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    from sweeper.spec.model import parse_spec

    try:
        old_spec = parse_spec(data["spec"], source_name=str(path), root=str(data.get("root", ".")))
    except (KeyError, TypeError, SweeperError) as exc:
        raise SweeperError(
            f"{path}: cannot read the experiment it records ({exc})"
            "\n  fix: pass --fresh to move the folder aside and start over"
        ) from None
    return fingerprint(old_spec)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass(slots=True)
class Partial:
    """A trial with some replicates still to run (never run, in flight at the crash, or retried)."""

    params: dict[str, Any]
    missing: list[int]
    values: list[list[float]] = field(default_factory=list)  # complete replicates, told metrics
    statuses: list[str] = field(default_factory=list)
    attempts: dict[int, int] = field(default_factory=dict)  # replicate -> attempts already made


@dataclass(slots=True)
class Restored:
    """What the engine starts from: runs and trials already done, and the trials to complete."""

    partial: dict[int, Partial]
    runs_done: int = 0
    trials_done: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    best: tuple[float, int] | None = None  # value, trial
    first_start: float | None = None
    last_end: float | None = None
    # (trial, params, aggregate values or None, status) of every finished trial, in trial order:
    # what the study is rebuilt from (sweeper dashboard rebuilds its study from the same list)
    finished: list[tuple[int, dict[str, Any], list[float] | None, str]] = field(default_factory=list)
    race: Race | None = None  # adaptive replicates: the race replayed from the table


def restore(
    spec: Experiment,
    folder: Path,
    searcher: Searcher | None,
    *,
    retry_failed: bool = False,
    stage: str = "search",
) -> Restored:
    """Read the trial table's rows of ``stage``, rebuild ``searcher``'s study from them (when given),
    and say what is left (the confirmation stage restores its own trials: sweeper.engine.confirm)."""
    from sweeper.results.table import read_folder

    tables = folder / TRIALS
    out = Restored({})
    if not tables.is_dir():
        return out
    check_table(tables)
    table = _of_stage(read_folder(tables), stage)
    if table.num_rows == 0:
        return out
    gc_was_on = gc.isenabled()
    gc.disable()  # millions of small dicts would set off a full collection again and again
    try:
        trials = _rows_by_trial(spec, table)
    finally:
        if gc_was_on:
            gc.enable()
    tried = _attempts(folder)
    finished = out.finished
    partial: list[tuple[int, dict[str, Any]]] = []
    dones = {
        k: {r: row for r, row in reps.items() if not (retry_failed and row["status"] in FAILED)}
        for k, (_, reps) in trials.items()
    }
    out.race = _replay(spec, trials, dones)
    for k, (params, reps) in sorted(trials.items()):
        done = dones[k]
        wanted = spec.replicates if out.race is None else out.race.target(k)
        missing = [r for r in range(wanted) if r not in done]
        values = [row["told"] for row in done.values() if row["status"] == "complete"]
        statuses = [row["status"] for row in done.values()]
        for row in done.values():
            out.runs_done += 1
            out.counts[row["status"]] = out.counts.get(row["status"], 0) + 1
            if row["started"] is not None:
                first = out.first_start
                out.first_start = row["started"] if first is None else min(first, row["started"])
            if row["ended"] is not None:
                out.last_end = row["ended"] if out.last_end is None else max(out.last_end, row["ended"])
        if missing or (out.race is not None and not out.race.ended(k)):
            made = {r: max(tried.get((k, r), 0), _attempt(reps.get(r))) for r in missing}
            out.partial[k] = Partial(params, missing, values, statuses, made)
            partial.append((k, params))
            continue
        out.trials_done += 1
        if not values:
            finished.append((k, params, None, "pruned" if "pruned" in statuses else "failed"))
            continue
        finished.append((k, params, trial_values(values), "complete"))
        value = trial_value([v[0] for v in values])
        raced = out.race is None or len(done) >= spec.replicates  # the best ran them all
        if (
            raced
            and value is not None
            and (out.best is None or better(spec.primary.direction, value, out.best[0]))
        ):
            out.best = (value, k)
    if searcher is not None:
        searcher.restore(finished, partial)
    return out


def _replay(
    spec: Experiment,
    trials: dict[int, tuple[dict[str, Any], dict[int, dict[str, Any]]]],
    dones: dict[int, dict[int, dict[str, Any]]],
) -> Race | None:
    """The race as the table leaves it (a killed driver's race resumes exactly where it was)."""
    from sweeper.search.racing import replay

    return replay(
        spec,
        (
            (k, params, {r: (row["told"][0], row["status"]) for r, row in dones[k].items()})
            for k, (params, _) in trials.items()
        ),
    )


def _of_stage(table: pa.Table, stage: str) -> pa.Table:
    """Rows of one stage; rows written before the stage column existed are search rows."""
    import pyarrow.compute as pc

    if "stage" not in table.column_names:
        return table if stage == "search" else table.slice(0, 0)
    return table.filter(pc.equal(pc.fill_null(table.column("stage"), "search"), stage))


def _rows_by_trial(
    spec: Experiment, table: pa.Table
) -> dict[int, tuple[dict[str, Any], dict[int, dict[str, Any]]]]:
    """{trial: (params, {replicate: row})}, params typed as the space gives them."""
    from sweeper.search.searcher import told_metrics

    told = [m.name for m in told_metrics(spec)]
    names = set(table.column_names)
    cols = {
        c: table.column(c).to_pylist()
        for c in ("trial", "replicate", "status", "attempt", *told, *(v.name for v in spec.variables))
        if c in names
    }
    n = table.num_rows
    # Timestamps as seconds straight from their microseconds (a datetime a row costs ~2 us), and
    # built once: a default list built per row made this quadratic (100,000 rows took 168 s).
    times = {c: _seconds(table.column(c)) if c in names else [None] * n for c in ("started_at", "ended_at")}
    out: dict[int, tuple[dict[str, Any], dict[int, dict[str, Any]]]] = {}
    for i in range(n):
        k, r, status = cols["trial"][i], cols["replicate"][i], cols["status"][i]
        if k is None or r is None:
            continue
        if k not in out:
            out[k] = (_params(spec, cols, i), {})
        out[k][1][int(r)] = {
            "status": status,
            "told": [_float(cols[m][i]) if m in cols else math.nan for m in told],
            "started": times["started_at"][i],
            "ended": times["ended_at"][i],
            "attempt": cols["attempt"][i] if "attempt" in cols else None,
        }
    return out


def _seconds(column: pa.ChunkedArray) -> list[float | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(column.type):
        micros = pc.cast(column, pa.timestamp("us", tz=column.type.tz)).cast(pa.int64())
        return [None if v is None else v / 1e6 for v in micros.to_pylist()]
    return [None if v is None else v.timestamp() for v in column.to_pylist()]


def _attempt(row: dict[str, Any] | None) -> int:
    return int(row["attempt"] or 0) if row is not None and row.get("attempt") is not None else 0


def _attempts(folder: Path) -> dict[tuple[int, int], int]:
    """The highest attempt each (trial, replicate) reported steps under, from history/.

    A rerun after a crash is a new attempt, so its learning curve never mixes with the partial one
    the killed run left behind.
    """
    import pyarrow.parquet as pq

    from sweeper.results.table import _parts

    history = folder / "history"
    if not history.is_dir():
        return {}
    compact, parts = _parts(history)
    out: dict[tuple[int, int], int] = {}
    for f in ([compact] if compact else []) + [p for _, p in parts]:
        try:
            cols = pq.read_table(f, columns=["trial", "replicate", "attempt"]).to_pydict()
        except Exception:  # history is advisory here; the trial table decides
            continue
        for k, r, a in zip(cols["trial"], cols["replicate"], cols["attempt"], strict=True):
            if k is not None and r is not None and a is not None and a > out.get((k, r), 0):
                out[(k, r)] = a
    return out


def _params(spec: Experiment, cols: dict[str, list[Any]], i: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for v in spec.variables:
        value = cols[v.name][i] if v.name in cols else None
        if value is None:
            continue
        options = v.choices if v.kind == "choice" else (v.value,) if v.kind == "const" else ()
        if options and value not in options:  # mixed-type choices are stored as text
            value = {str(c): c for c in options}.get(str(value), value)
        params[v.name] = value
    return params


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)
