"""Where an experiment stands: counts, best so far, runs in flight, and whether it can be resumed.

``sweeper status`` reads the driver's lock and heartbeat (:mod:`sweeper.results.lock`) and the trial
table, and never writes anything.

:func:`experiment_status` returns plain data so that other views (e.g. the Slurm job state) can
extend it: add a field, fill it in a function of your own, and print it in :func:`format_status`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError, command
from sweeper.results.lock import driver_record, is_locked
from sweeper.results.table import EXPERIMENT_JSON, TRIALS, aside_folder, read_record
from sweeper.results.values import mean_of

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class ExperimentStatus:
    """Plain data about one results folder; ``format_status`` turns it into text."""

    folder: Path
    name: str
    state: str  # running | finished | interrupted | stopped | failed | crashed | unknown
    source: str  # the sweep file it was launched from
    trials_total: int | None
    replicates: int
    rows: int = 0
    trials: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    per_setting: list[dict[str, Any]] = field(default_factory=list)  # the best per compare: within:
    running: int = 0  # runs executing, when a driver is alive
    queued: int = 0  # runs handed to the backend, waiting for a slot
    errors: list[tuple[str, int]] = field(default_factory=list)  # (headline, runs) per distinct error
    driver: dict[str, Any] = field(default_factory=dict)
    resumable: bool = False
    note: str = ""  # why it can or cannot be resumed, and how
    partial: int = 0  # trials with replicates still to finish (left out of "best so far")
    confirm_rows: int = 0  # runs of the confirmation stage (compare: {confirm: N}) recorded
    confirm_trials: int = 0
    racing: str = ""  # adaptive replicates: how far the race is, in words


def experiment_status(folder: str | Path) -> ExperimentStatus:
    """Read (never write) what a results folder says about its experiment."""
    from sweeper.results.failures import table_groups
    from sweeper.results.table import check_results_folder, load, read_spec
    from sweeper.results.values import CONFIRM, best_per_setting, best_trial, complete_trials, stages

    folder = check_results_folder(folder).resolve()
    alive = is_locked(folder)  # before the record: a driver that ends meanwhile wrote its end state
    record = read_record(folder / EXPERIMENT_JSON)
    spec = read_spec(folder)
    from sweeper.search.searcher import budget

    total = budget(spec)
    driver = driver_record(folder)
    state = state_of(record, alive)
    base: dict[str, Any] = dict(
        folder=folder,
        name=spec.name,
        source=str(record.get("source", "")),
        trials_total=total,
        replicates=spec.replicates,
        driver=driver,
    )
    try:
        table = load(folder) if (folder / TRIALS).is_dir() else None
    except SweeperError as exc:
        return ExperimentStatus(
            state=state, resumable=False, note=f"the trial table is damaged: {exc}", **base
        )
    counts: dict[str, int] = {}
    rows = trials = partial = confirm_rows = confirm_trials = 0
    best = None
    per_setting: list[dict[str, Any]] = []
    errors: list[tuple[str, int]] = []
    if table is not None and len(table):
        confirming = stages(table) == CONFIRM  # counted on a line of its own
        counts = {str(k): int(v) for k, v in table.loc[~confirming, "status"].value_counts().items()}
        confirm_rows, confirm_trials = int(confirming.sum()), int(table.loc[confirming, "trial"].nunique())
        rows, trials = len(table) - confirm_rows, int(table["trial"].nunique()) - confirm_trials
        best = best_trial(table, spec)
        per_setting = best_per_setting(table, spec)
        partial = complete_trials(table, spec)[1]
        errors = table_groups(table)
    want = total * spec.replicates
    failed = counts.get("failed", 0) + counts.get("timeout", 0)
    racing, racing_left = _race_state(spec, table, total)
    source = base["source"] or "FILE"
    again = launch_command(source, known_as(folder), record.get("backend"), record.get("address") or None)
    if alive:
        resumable, note = False, "a driver is running it now; it cannot be launched twice"
    elif racing_left:
        resumable = True
        note = f"the race is not over; `{again}` continues it"
    elif spec.racing is None and rows < want:
        resumable = True
        note = f"{want - rows} of {want} runs left; `{again}` continues it"
    elif failed:
        resumable = True
        retry = f"{again} --retry-failed" if from_file(source) else f"{again}, retry_failed=True"
        note = f"all runs done; `{retry}` reruns the {failed} failed"
    else:
        resumable, note = True, f"all runs done; {extend_hint(source)}"
    aside = _put_aside(folder)
    if aside and not alive:
        resumable = True
        shown = known_as(folder)
        waiting = (
            f"{shown}/{aside_folder(Path(TRIALS))}"
            if isinstance(shown, str)
            else aside_folder(folder / TRIALS)
        )
        note += (
            f"; {aside} more finished runs wait in {waiting} (put there after a"
            " storage error): the launch takes them in first"
        )
    return ExperimentStatus(
        state=state,
        rows=rows,
        trials=trials,
        counts=counts,
        best=best,
        per_setting=per_setting,
        running=int(driver.get("running", 0)) if alive else 0,
        queued=int(driver.get("queued", 0)) if alive else 0,
        errors=errors,
        resumable=resumable,
        note=note,
        partial=partial,
        confirm_rows=confirm_rows,
        confirm_trials=confirm_trials,
        racing=racing,
        **base,
    )


def _put_aside(folder: Path) -> int:
    """Rows a writer put beside ``trials/`` when it could not write there (read from the footers)."""
    import pyarrow.parquet as pq

    rows = 0
    for p in sorted(aside_folder(folder / TRIALS).glob("part-*.parquet")):
        try:
            rows += pq.read_metadata(p).num_rows
        except OSError:
            continue
    return rows


def _race_state(spec: Any, table: Any, total: int) -> tuple[str, bool]:
    """Adaptive replicates: (a line on the race, whether any of it is left to run)."""
    from sweeper.search.racing import replay

    if spec.racing is None:
        return "", False
    if table is None or not len(table):
        return f"replicates {spec.racing.min}..{spec.racing.max}: no trial raced yet", True
    from sweeper.results.values import SEARCH, stages

    told = spec.primary.name
    trials = []
    for k, rows in table[stages(table) == SEARCH].groupby("trial", sort=True):
        params = {v.name: rows[v.name].iloc[0] for v in spec.variables if v.name in rows}
        values = rows[told] if told in rows else [None] * len(rows)
        reps = {int(r): (v, s) for r, v, s in zip(rows["replicate"], values, rows["status"], strict=True)}
        trials.append((int(k), params, reps))
    race = replay(spec, trials)
    assert race is not None
    ended = sum(race.ended(k) for k, _, _ in trials)
    line = (
        f"replicates {spec.racing.min}..{spec.racing.max}: {ended} of {len(trials)} trials raced,"
        f" {sum(len(r) for _, _, r in trials)} runs (fixed replicates: {spec.racing.max} would"
        f" take {len(trials) * spec.racing.max})"
    )
    return line, ended < len(trials) or len(trials) < total


def launch_command(source: str, folder: Path | str, backend: str | None, address: str | None) -> str:
    """The command that resumes ``folder`` (a path, or the URI of one on object storage) as it was
    launched, good from any folder: the sweep file, the results root and the backend (and its
    address) it ran on. ``address="auto"`` (a driver inside a cluster job, which joins that job's
    Ray) is left out: it means nothing outside the job."""
    root = folder.rsplit("/", 1)[0] if isinstance(folder, str) else str(folder.parent)
    if not from_file(source):  # a spec given in Python (<dict>, <Experiment>): no command resumes it
        return f"sweeper.launch(...) again with the same spec and results={root!r}"
    words = ["launch", source, "--results", root]
    if backend:
        words += ["--backend", backend]
    if address and address != "auto":
        words += ["--address", address]
    return command(*words)


def from_file(source: str) -> bool:
    """Whether a spec's ``source`` names a sweep file (not ``<dict>``: one given in Python)."""
    return not source.startswith("<")


def extend_hint(source: str) -> str:
    """How to give a finished sweep more to run."""
    return (
        f"raise trials or replicates in {'the sweep file' if from_file(source) else 'the spec'} to extend it"
    )


def known_as(folder: Path) -> Path | str:
    """What the user calls a results folder: the URI it is a local copy of (``sweeper status
    s3://...`` reads one), else the folder itself."""
    from sweeper.results.store import COPY_OF

    try:
        uri = (folder / COPY_OF).read_text(encoding="utf-8").strip()
    except OSError:
        return folder
    return uri or folder


def state_of(record: dict[str, Any], alive: bool) -> str:
    """The experiment's state as every view shows it: a "running" record without a live driver
    is "crashed" (it died without saying so: SIGKILL, power loss, OOM)."""
    state = str(record.get("status", "unknown"))
    return "crashed" if state == "running" and not alive else state


def params_text(params: dict[str, Any]) -> str:
    """``lr=0.02676, steps=120``: floats to 4 significant digits, for one-line summaries."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def per_setting_lines(per_setting: list[dict[str, Any]], head: str) -> list[str]:
    """``best per dataset (compare: within:):`` and a line per setting: its best trial."""
    return [f"{head} {' and '.join(per_setting[0]['setting'])} (compare: within:):"] + [
        f"  {params_text(b['setting'])}: trial {b['trial']} {b['metric']}={b['mean']:.6g} ({mean_of(b['n'])})"
        + (f" with {params_text(b['params'])}" if b["params"] else "")
        for b in per_setting
    ]


def format_status(st: ExperimentStatus) -> str:
    from sweeper.results.failures import group_lines

    want = (st.trials_total or 0) * st.replicates
    lines = [f"{st.name}: {st.state}  ({known_as(st.folder)})"]
    if st.state == "running" and st.driver:
        lines.append(
            f"  driver: pid {st.driver.get('pid')} on {st.driver.get('host')}, "
            f"last heartbeat {st.driver.get('heartbeat_at')}"
            + (f", {st.driver['stopping']}" if st.driver.get("stopping") else "")
        )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(st.counts.items())) or "none yet"
    runs = f"{st.rows}/{want}" if not st.racing else f"{st.rows} (at most {want})"
    lines.append(f"  runs: {runs} recorded ({counts}); trials: {st.trials}/{st.trials_total}")
    if st.racing:
        lines.append(f"  racing: {st.racing}")
    if st.confirm_rows:
        lines.append(f"  confirmation stage: {st.confirm_rows} runs of {st.confirm_trials} trials recorded")
    lines.append(f"  in flight: {st.running + st.queued} ({st.running} running, {st.queued} queued)")
    lines += ["  " + line for line in group_lines(st.errors, known_as(st.folder))]
    if st.per_setting:
        lines += ["  " + line for line in per_setting_lines(st.per_setting, "best so far per")]
    elif st.best:
        lines.append(
            f"  best so far: trial {st.best['trial']} {st.best['metric']}={st.best['mean']:.6g}"
            f" ({mean_of(st.best['n'])}) with {params_text(st.best['params'])}"
            + (f"; {st.partial} trials still missing replicates are not ranked" if st.partial else "")
        )
    lines.append(f"  resumable: {'yes' if st.resumable else 'no'} - {st.note}")
    return "\n".join(lines)
