"""Resuming an experiment from its results folder: the trial table is the single source of truth.

``launch`` on a folder that already holds the same experiment continues it: replicates that
finished are not rerun, trials keep their ids, the Optuna study is rebuilt from the table, and runs
that were in flight when the driver died (they have no row) run again. Whether the folder holds
"the same experiment" is decided by a fingerprint of the parts that give the table its meaning.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from sweeper.errors import SweeperError, option
from sweeper.results.reading import check_table
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, read_json
from sweeper.results.values import trial_values

if TYPE_CHECKING:
    import pyarrow as pa

    from sweeper.search.proposers import Finished
    from sweeper.search.racing import Race
    from sweeper.search.searcher import Searcher
    from sweeper.spec.experiment import Experiment

# Statuses a replicate is not rerun for unless asked (--retry-failed).
FAILED = frozenset({"failed", "timeout"})
TIMES = ("started_at", "ended_at")
KEYS = ("trial", "replicate")
# Version 1 left out every value equal to False, so 0 and 0.0 too: `const: 0` and `const: false` hashed
# alike. A folder is checked with the version it was written with (a newer one would refuse them all).
FINGERPRINT = 2


def fingerprint(spec: Experiment, version: int = FINGERPRINT) -> dict[str, Any]:
    """The parts of a spec that give the trial table its meaning, and their hash.

    Changing any of these makes old rows mean something else; raising ``trials`` or a fixed
    ``replicates``, adding a recorded metric, resources, timeouts and the hypothesis do not.
    """
    from sweeper.search.searcher import told_metrics

    told = told_metrics(spec)
    parts: dict[str, Any] = {
        "variables": [_variable(v, version) for v in spec.variables],
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
    marked = {"version": version} if version > 1 else {}
    return {"sha256": _hash(parts), "parts": parts, **marked}


def _command(spec: Experiment) -> Any:
    cmd = getattr(spec, "command", None)
    return {"command": list(cmd.argv), "shell": cmd.shell} if cmd is not None else None


def _variable(v: Any, version: int) -> dict[str, Any]:
    out = {"name": v.name, "kind": v.kind}
    for key in ("choices", "low", "high", "step", "log", "value", "when"):
        value = getattr(v, key)
        unset = value in (None, (), False) if version == 1 else value in (None, ()) or value is False
        if not unset:
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
    from sweeper.results.status import from_file

    path = folder / EXPERIMENT_JSON
    in_file = sweep_file is not None or from_file(spec.source)
    new_file = sweep_file or ("the sweep file" if in_file else "the spec")
    if not path.is_file():
        raise SweeperError(
            f"{folder} holds a trials/ folder but no {EXPERIMENT_JSON}, so it cannot be resumed safely"
            f"\n  fix: pass {option('fresh')} to move it aside and start over, or restore {path}"
        )
    try:
        data = read_json(path)
    except SweeperError as exc:
        raise SweeperError(
            f"{exc}\n  fix: restore {path} from a backup, or relaunch with {option('fresh')} to move"
            " the folder aside and start over (its trial table is kept there)"
        ) from None
    if not isinstance(data, dict):
        raise SweeperError(
            f"{path}: not an experiment record (expected a JSON object)"
            f"\n  fix: pass {option('fresh')} to move the folder aside and start over"
        )
    old = data.get("fingerprint")
    if not isinstance(old, dict) or not isinstance(old.get("parts"), dict):
        old = _fingerprint_of_record(path, data)
    version = old.get("version", 1)
    new = fingerprint(spec, version if version in (1, FINGERPRINT) else FINGERPRINT)
    if old.get("sha256") == new["sha256"]:
        return
    changed = [k for k in new["parts"] if old["parts"].get(k) != new["parts"][k]] or ["fingerprint"]
    lines = [line for k in changed for line in _changes(k, old["parts"].get(k), new["parts"][k])]
    what = " and ".join([", ".join(changed[:-1]), changed[-1]] if len(changed) > 1 else changed)
    raise SweeperError(
        f"{folder} holds experiment {spec.name!r} run with other {what}; "
        "its results would not mean the same thing, so it is not resumed:\n"
        + "\n".join(lines)
        + f"\n  fix: to start a new experiment, give it a new name (experiment: in {new_file});"
        f" to start this one over, relaunch with {option('fresh')} (the old folder"
        " is moved aside, not deleted); to continue the old one, undo the change"
    )


def _fingerprint_of_record(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    from sweeper.spec.model import parse_spec

    try:
        old_spec = parse_spec(data["spec"], source_name=str(path), root=str(data.get("root", ".")))
    except (KeyError, TypeError, SweeperError) as exc:
        raise SweeperError(
            f"{path}: cannot read the experiment it records ({exc})"
            f"\n  fix: pass {option('fresh')} to move the folder aside and start over"
        ) from None
    return fingerprint(old_spec, 1)


def _changes(part: str, was: Any, now: Any) -> list[str]:
    """What changed in one part of the fingerprint; the variables one by one (a whole list of them
    hides the one bound that moved)."""
    if part == "variables" and isinstance(was, list) and all(isinstance(v, dict) for v in was):
        before = {v.get("name"): {k: x for k, x in v.items() if k != "name"} for v in was}
        after = {v["name"]: {k: x for k, x in v.items() if k != "name"} for v in now}
        lines = [
            f"  variables.{name}: "
            + (
                "added"
                if name not in before
                else "removed"
                if name not in after
                else f"was {_short(before[name])}, now {_short(after[name])}"
            )
            for name in [*after, *(n for n in before if n not in after)]
            if before.get(name) != after.get(name)
        ]
        if lines:
            return lines
        order = " ".join(map(str, before))
        return [f"  variables: the same, in another order (was {order}; the search samples in file order)"]
    return [f"  {part}: was {_short(was)}, now {_short(now)}"]


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
    finished: Sequence[Finished] = field(default_factory=list)
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
    and say what is left (the confirmation stage restores its own trials: sweeper.engine.confirm).

    Column-wise: the table is folded with numpy to one entry per (trial, replicate) and counted per
    trial; Python objects are built for the trials left to run, and for a finished trial only when
    it is read (a million rows read as dicts took 180 s and 1.7 GB).
    """
    import numpy as np

    from sweeper.results.reading import read_folder
    from sweeper.search.searcher import told_metrics

    tables = folder / TRIALS
    out = Restored({})
    if not tables.is_dir():
        return out
    check_table(tables)
    # only the columns restored (a run's node, error, seed and other metrics are not)
    names = [v.name for v in spec.variables] + [m.name for m in told_metrics(spec)]
    table = _of_stage(
        read_folder(tables, columns=[*KEYS, "status", "stage", "attempt", *TIMES, *names]), stage
    )
    if table.num_rows == 0:
        return out
    from sweeper.search.racing import replay

    f = _fold(spec, table, retry_failed)
    race = out.race = replay(spec, _race_input(spec, f)) if spec.racing is not None else None
    ids = f.trial[f.starts]
    of = np.repeat(np.arange(len(ids)), np.diff(np.append(f.starts, len(f.trial))))  # entry -> trial
    if race is None:
        wanted = np.full(len(ids), spec.replicates, dtype=np.int64)
        racing = np.zeros(len(ids), dtype=bool)
    else:
        wanted = np.array([race.target(int(k)) for k in ids], dtype=np.int64)
        racing = np.array([not race.ended(int(k)) for k in ids], dtype=bool)
    complete, pruned = f.done & f.has("complete"), f.done & f.has("pruned")
    have = np.bincount(of[f.done & (f.replicate >= 0) & (f.replicate < wanted[of])], minlength=len(ids))
    left = (have < wanted) | racing

    # every replicate done counts as a run, its status in the order the rows are met
    out.runs_done = int(f.done.sum())
    codes, at, n = np.unique(f.code[f.done], return_index=True, return_counts=True)
    out.counts = {
        f.names[c]: k for _, c, k in sorted(zip(at.tolist(), codes.tolist(), n.tolist(), strict=True))
    }
    out.first_start = _extreme(f.table, "started_at", f.row[f.done], np.min)
    out.last_end = _extreme(f.table, "ended_at", f.row[f.done], np.max)

    # finished trials: their count, the best, and the list the study is rebuilt from
    fin = np.flatnonzero(~left)
    out.trials_done = len(fin)
    kept = complete & ~left[of]
    offsets = np.concatenate([[0], np.cumsum(np.bincount(of[kept], minlength=len(ids))[fin])])
    told = f.told[f.row[kept]]
    means = _means(told[:, 0], offsets)
    raced = np.ones(len(fin), dtype=bool)
    if race is not None:
        raced = np.bincount(of[f.done], minlength=len(ids))[fin] >= spec.replicates  # the best ran all
    best = np.flatnonzero(raced & np.isfinite(means))
    if len(best):
        j = best[int((np.argmax if spec.primary.direction == "maximize" else np.argmin)(means[best]))]
        out.best = (float(means[j]), int(ids[fin[j]]))
    any_pruned = np.bincount(of[pruned], minlength=len(ids))[fin] > 0
    kind = np.where(np.diff(offsets) > 0, "complete", np.where(any_pruned, "pruned", "failed"))
    out.finished = FinishedTrials(spec, ids[fin], f.params(fin), kind, offsets, told)

    # trials with replicates left to run: few (in flight at a crash, or retried), so as objects
    tried = _attempts(folder)
    partial: list[tuple[int, dict[str, Any]]] = []
    todo = np.flatnonzero(left)
    ends = np.append(f.starts[1:], len(f.trial))
    for j, params in zip(todo.tolist(), _params_of(spec, f.params(todo)), strict=True):
        k, entries = int(ids[j]), range(int(f.starts[j]), int(ends[j]))
        done = [i for i in entries if f.done[i]]
        got = {int(f.replicate[i]) for i in done}
        missing = [r for r in range(int(wanted[j])) if r not in got]
        reps = {int(f.replicate[i]): i for i in entries}
        made = {r: max(tried.get((k, r), 0), f.attempt(reps.get(r))) for r in missing}
        values = [f.told[f.row[i]].tolist() for i in done if complete[i]]
        out.partial[k] = Partial(params, missing, values, [f.names[f.code[i]] for i in done], made)
        partial.append((k, params))
    if searcher is not None:
        searcher.restore(out.finished, partial)
    return out


def _of_stage(table: pa.Table, stage: str) -> pa.Table:
    """Rows of one stage; rows written before the stage column existed are search rows."""
    import pyarrow.compute as pc

    if "stage" not in table.column_names:
        return table if stage == "search" else table.slice(0, 0)
    wanted = pc.equal(pc.fill_null(table.column("stage"), "search"), stage)
    return table if pc.all(wanted).as_py() else table.filter(wanted)  # (a copy of every column)


@dataclass(slots=True)
class _Folded:
    """The table as one entry per (trial, replicate): the last row written for it, in trial order
    and then in the order the replicates first appear (the order rows were always met in)."""

    table: pa.Table  # the variables, attempt and times of the rows with keys
    trial: Any  # numpy arrays, one item per entry ...
    replicate: Any
    row: Any  # ... its row in ``table``
    code: Any  # its status, as an index into ``names``
    names: list[Any]  # str, and None for a row without one
    done: Any  # not to be run again
    starts: Any  # where each trial's entries begin
    first: Any  # each trial's first row: its params come from there
    told: Any  # told metrics of every row of ``table`` (rows x metrics), NaN where missing

    def has(self, status: str) -> Any:
        """Which entries have ``status``."""
        return self.code == (self.names.index(status) if status in self.names else -1)

    def params(self, trials: Any) -> pa.Table:
        """The variable columns at the first row of each of ``trials`` (indices of trials)."""
        return self.table.take(self.first[trials])

    def attempt(self, i: int | None) -> int:
        if i is None or "attempt" not in self.table.column_names:
            return 0
        value = self.table.column("attempt")[int(self.row[i])].as_py()
        return int(value or 0)


def _fold(spec: Experiment, table: pa.Table, retry_failed: bool) -> _Folded:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from sweeper.search.searcher import told_metrics

    keyed = pc.and_(pc.is_valid(table.column("trial")), pc.is_valid(table.column("replicate")))
    if not pc.all(keyed).as_py():
        table = table.filter(keyed)
    variables = [v.name for v in spec.variables if v.name in table.column_names]
    trial = table.column("trial").to_numpy()
    rep = table.column("replicate").to_numpy().astype(np.int64)
    n = len(trial)
    order = np.lexsort((rep, trial))  # stable: the rows of one (trial, replicate) stay in written order
    t, r = trial[order], rep[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (t[1:] != t[:-1]) | (r[1:] != r[:-1])
    first = order[new]
    last = order[np.append(np.flatnonzero(new)[1:], n) - 1]
    by = np.lexsort((first, t[new]))
    trial, row, first = t[new][by], last[by], first[by]
    starts = np.flatnonzero(np.append(True, trial[1:] != trial[:-1]))
    status = pc.dictionary_encode(table.column("status")).combine_chunks()
    names: list[Any] = [*status.dictionary.to_pylist(), None]
    code = status.indices.fill_null(len(names) - 1).to_numpy()[row]
    failed = [i for i, name in enumerate(names) if name in FAILED]
    done = ~np.isin(code, failed) if retry_failed else np.ones(len(row), dtype=bool)
    told = [
        pc.fill_null(pc.cast(table.column(m.name), pa.float64()), math.nan).to_numpy()
        if m.name in table.column_names
        else np.full(n, math.nan)
        for m in told_metrics(spec)
    ]
    return _Folded(
        table=table.select([*variables, *(c for c in ("attempt", *TIMES) if c in table.column_names)]),
        trial=trial,
        replicate=r[new][by],
        row=row,
        code=code,
        names=names,
        done=done,
        starts=starts,
        first=first[starts],
        told=np.column_stack(told),
    )


def _extreme(table: pa.Table, column: str, rows: Any, pick: Any) -> float | None:
    """The earliest or latest time of a timestamp column over ``rows``, in seconds."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if column not in table.column_names or not pa.types.is_timestamp(table.column(column).type):
        return None
    col = table.column(column)
    micros = pc.cast(col, pa.timestamp("us", tz=col.type.tz)).cast(pa.int64()).combine_chunks()
    valid = micros.is_valid().to_numpy(zero_copy_only=False)[rows]
    if not valid.any():
        return None
    return int(pick(micros.fill_null(0).to_numpy()[rows][valid])) / 1e6


def _means(values: Any, offsets: Any) -> Any:
    """Each trial's mean of its complete replicates' ``values`` (``offsets`` bound each trial's),
    exactly as ``trial_values`` takes it (fsum); NaN for a trial without one."""
    import numpy as np

    counts = np.diff(offsets)
    out = np.full(len(counts), math.nan)
    one = counts == 1
    out[one] = values[offsets[:-1][one]]
    plain = values.tolist() if (counts > 1).any() else []
    for j in np.flatnonzero(counts > 1).tolist():
        out[j] = math.fsum(plain[offsets[j] : offsets[j + 1]]) / counts[j]
    return out


class FinishedTrials(Sequence["Finished"]):
    """Finished trials as (trial, params, aggregate values or None, status), in trial order, kept as
    columns: each tuple is built when read, so a million finished trials cost megabytes, not
    gigabytes, and nothing at all when the search does not learn from them."""

    def __init__(self, spec: Experiment, ids: Any, params: pa.Table, kind: Any, offsets: Any, told: Any):
        self.trials = ids  # numpy array of the trial ids, for readers that need only those
        self._spec, self._params, self._kind, self._offsets, self._told = spec, params, kind, offsets, told

    def __len__(self) -> int:
        return len(self.trials)

    @overload
    def __getitem__(self, i: int) -> Finished: ...

    @overload
    def __getitem__(self, i: slice) -> list[Finished]: ...

    def __getitem__(self, i: int | slice) -> Finished | list[Finished]:
        if isinstance(i, slice):
            return [self._chunk(j, j + 1)[0] for j in range(*i.indices(len(self)))]
        j = i + len(self) if i < 0 else i
        if not 0 <= j < len(self):
            raise IndexError(i)
        return self._chunk(j, j + 1)[0]

    def __iter__(self) -> Iterator[Finished]:
        for a in range(0, len(self), 4096):
            yield from self._chunk(a, min(a + 4096, len(self)))

    def _chunk(self, a: int, b: int) -> list[Finished]:
        offsets = self._offsets[a : b + 1].tolist()
        told = self._told[offsets[0] : offsets[-1]].tolist()
        params = _params_of(self._spec, self._params.slice(a, b - a))
        out: list[Finished] = []
        for j, (k, kind, p) in enumerate(
            zip(self.trials[a:b].tolist(), self._kind[a:b].tolist(), params, strict=True)
        ):
            values = told[offsets[j] - offsets[0] : offsets[j + 1] - offsets[0]]
            out.append((k, p, trial_values(values) if kind == "complete" else None, kind))
        return out


def _race_input(
    spec: Experiment, f: _Folded
) -> Iterator[tuple[int, dict[str, Any], dict[int, tuple[float, str]]]]:
    """(trial, params, {replicate: (primary value, status)}) of the replicates done, trial by trial."""
    import numpy as np

    ends = np.append(f.starts[1:], len(f.trial)).tolist()
    everyone = np.arange(len(f.starts))
    for j, params in enumerate(_params_of(spec, f.params(everyone))):
        entries = range(int(f.starts[j]), ends[j])
        reps = {
            int(f.replicate[i]): (float(f.told[f.row[i], 0]), f.names[f.code[i]])
            for i in entries
            if f.done[i]
        }
        yield int(f.trial[f.starts[j]]), params, reps


def _params_of(spec: Experiment, table: pa.Table) -> list[dict[str, Any]]:
    """One params dict per row of ``table``'s variable columns, typed as the space gives them."""
    out: list[dict[str, Any]] = [{} for _ in range(table.num_rows)]
    for v in spec.variables:
        if v.name not in table.column_names:
            continue
        options = v.choices if v.kind == "choice" else (v.value,) if v.kind == "const" else ()
        text = {str(c): c for c in options}
        for params, value in zip(out, table.column(v.name).to_pylist(), strict=True):
            if value is None:
                continue
            if options and value not in options:  # mixed-type choices are stored as text
                value = text.get(str(value), value)
            params[v.name] = value
    return out


def _attempts(folder: Path) -> dict[tuple[int, int], int]:
    """The highest attempt each (trial, replicate) reported steps under, from history/.

    A rerun after a crash is a new attempt, so its learning curve never mixes with the partial one
    the killed run left behind.
    """

    from sweeper.results.reading import file_list, read_file

    history = folder / "history"
    if not history.is_dir():
        return {}
    out: dict[tuple[int, int], int] = {}
    for f in file_list(history):
        try:
            cols = read_file(f, ["trial", "replicate", "attempt"]).to_pydict()
        except Exception:  # history is advisory here; the trial table decides
            continue
        for k, r, a in zip(cols["trial"], cols["replicate"], cols["attempt"], strict=True):
            if k is not None and r is not None and a is not None and a > out.get((k, r), 0):
                out[(k, r)] = a
    return out
