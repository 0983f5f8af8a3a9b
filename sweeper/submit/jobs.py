"""Cluster submission as a Python API: the same sweep, run by a Slurm job or a Ray Job.

``sweeper launch --slurm`` / ``--submit URL``, ``sweeper cancel`` and the cluster line of
``sweeper status`` are thin faces over these functions; a notebook calls them alike::

    job = sweeper.submit.slurm("sweeps/quickstart.yaml", results="/shared/results", nodes=2)
    state = sweeper.submit.wait(job)          # follow it (the progress line, read from its table)
    sweeper.submit.cancel(job.folder)         # or stop it; finished runs stay

Each submission leaves ``submission.json`` in the experiment's folder (where this machine sees
it), so ``cancel`` and ``status_line`` find the job from the folder alone.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sweeper.errors import SweeperError, command

if TYPE_CHECKING:
    from sweeper.engine.loop import Stats
    from sweeper.spec.slurm import SlurmOptions
    from sweeper.submit.record import Submission


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submitted sweep: the job, where its results and logs land, and how to reach it again."""

    kind: Literal["slurm", "ray-job"]
    job_id: str
    folder: str  # the experiment's results folder (a path, or a URI for a Ray Job)
    log: str  # the job's own output: a file (Slurm) or the command that prints it (Ray Job)
    sweep_file: Path
    address: str = ""  # the Ray dashboard (ray-job)
    recorded: bool = True  # submission.json kept beside the results, so cancel(folder) works
    moved_aside: Path | None = None  # where fresh=True moved the earlier results
    options: SlurmOptions | None = None  # what the Slurm job asked for, all sources merged


@dataclass(frozen=True, slots=True)
class Ended:
    """How a followed job ended: its final state in words, whether it succeeded, the runs recorded."""

    state: str
    ok: bool
    stats: Stats | None = None


def slurm(
    sweep_file: str | Path,
    *,
    results: str | Path = "results",
    fresh: bool = False,
    retry_failed: bool = False,
    profile: str | None = None,
    nodes: int | None = None,
    partition: str | None = None,
    time: str | None = None,
    cpus_per_node: int | None = None,
    gpus_per_node: str | None = None,
    mem_per_node: str | None = None,
    account: str | None = None,
    qos: str | None = None,
) -> Submitted:
    """Submit the sweep as one Slurm job (a Ray head on the first node, workers on the rest).

    Options override the sweep file's ``slurm:`` block, which overrides the ``profile``
    (cluster/slurm/NAME.yaml); each is checked as the sweep file's are. ``fresh`` moves earlier
    results aside first; a folder another Slurm job is still writing is refused.
    """
    from sweeper.results.folder import experiment_folder, move_aside
    from sweeper.spec import slurm as slurm_options
    from sweeper.spec.model import load_spec
    from sweeper.submit import record, sbatch

    sweep = Path(sweep_file).resolve()
    spec = load_spec(sweep)
    given = {
        "profile": profile,
        "nodes": nodes,
        "partition": partition,
        "time": time,
        "cpus_per_node": cpus_per_node,
        "gpus_per_node": gpus_per_node,
        "mem_per_node": mem_per_node,
        "account": account,
        "qos": qos,
    }
    raw = {k: v for k, v in given.items() if v is not None}
    flags = slurm_options.parse_options(raw, source="command line", where="flag")
    options = slurm_options.combine(block=spec.slurm, flags=flags, sweep_file=sweep)
    root = Path(results).resolve()
    folder = experiment_folder(spec, root)
    _refuse_second_job(folder)
    moved = move_aside(folder) if fresh and folder.exists() else None
    folder, _ = sbatch.prepare(
        experiment=spec.name, sweep_file=sweep, results=root, options=options, retry_failed=retry_failed
    )
    job_id = sbatch.submit(folder)
    log = folder / sbatch.SUBDIR / f"slurm-{job_id}.out"
    record.save(
        record.Submission(
            "slurm",
            job_id,
            str(folder),
            log=str(log),
            script=str(folder / sbatch.SUBDIR / "job.sbatch"),
            options=sbatch.options_dict(options),
        ),
        folder,
    )
    return Submitted("slurm", job_id, str(folder), str(log), sweep, moved_aside=moved, options=options)


def ray_job(sweep_file: str | Path, address: str, *, results: str) -> Submitted:
    """Submit the sweep as a Ray Job to the running cluster whose dashboard is at ``address``.

    ``results`` is an absolute path the cluster writes to, or a URI (``s3://``, ``gs://``) the job
    uploads to as it goes; the sweep file's folder and sweeper travel with the job.
    """
    from sweeper.spec.model import load_spec
    from sweeper.submit import rayjobs, record

    sweep = Path(sweep_file).resolve()
    spec = load_spec(sweep)
    root = rayjobs.check_results(str(results))
    job_id = rayjobs.submit(address, sweep, root, experiment=spec.name)
    folder = f"{root.rstrip('/')}/{spec.name}"
    log = f"ray job logs --address {address} {job_id}"
    sub = record.Submission("ray-job", job_id, folder, address=address, log=log)
    recorded = "://" not in root and _try_record(sub)  # a URI, or a path only the cluster has: no record
    return Submitted("ray-job", job_id, folder, log, sweep, address=address, recorded=recorded)


def wait(job: Submitted) -> Ended:
    """Follow ``job`` until it ends: the progress line on stderr (from its trial table, for Slurm;
    the job's own log, for a Ray Job). Ctrl-C stops following, never the job."""
    if job.kind == "slurm":
        from sweeper.spec.model import load_spec
        from sweeper.submit import sbatch
        from sweeper.submit.follow import follow

        def poll() -> tuple[str, bool]:
            st = sbatch.state(job.job_id)
            text = f"slurm {st.state}" + (f" ({st.reason})" if st.reason not in ("", "None") else "")
            return text, st.active

        _, stats = follow(Path(job.folder), load_spec(job.sweep_file), poll)
        final = sbatch.state(job.job_id)
        ok = final.state == "COMPLETED" and final.exit_code.startswith("0:")
        return Ended(f"{final.state} (exit {final.exit_code})", ok, stats)
    from sweeper.submit import rayjobs

    state = rayjobs.follow(job.address, job.job_id)
    return Ended(state, state == "SUCCEEDED")


def cancel(folder: str | Path, *, grace_s: float = 60.0) -> str:
    """Stop the cluster job that writes ``folder``; returns its final state. The driver gets
    ``grace_s`` seconds to write what finished before a hard stop; finished runs are kept."""
    from sweeper.submit import record, sbatch

    folder = Path(folder)
    sub = record.load(folder)
    if sub is None:
        raise SweeperError(
            f"{folder}: no {record.RECORD}, so no cluster job to cancel\n  fix: pass "
            "RESULTS/<experiment> of a sweep launched with --slurm or --submit; stop a "
            "local sweep with Ctrl-C"
        )
    if sub.kind == "slurm":
        final = sbatch.cancel(sub.job_id, grace_s=grace_s).state
    else:
        from sweeper.submit import rayjobs

        final = rayjobs.stop(sub.address, sub.job_id, wait_s=grace_s + 30)
    record.save(dataclasses.replace(sub, cancelled_at=dt.datetime.now(dt.UTC).isoformat()), folder)
    return final


def job_name(folder: str | Path) -> str | None:
    """``Slurm job 42`` or ``Ray job raysubmit_...`` for the submission behind ``folder``, if any."""
    from sweeper.submit import record

    sub = record.load(folder)
    return None if sub is None else _named(sub.kind, sub.job_id)


def _named(kind: str, job_id: str) -> str:
    """``Slurm job 42`` or ``Ray job raysubmit_...``: how every message names a job."""
    return f"{'Slurm job' if kind == 'slurm' else 'Ray job'} {job_id}"


def submitted_lines(job: Submitted) -> list[str]:
    """What ``sweeper launch --slurm`` or ``--submit`` prints: the job, where its results and logs
    land, and how to follow or stop it (a job without ``submission.json`` is stopped through Ray)."""
    lines = [] if job.moved_aside is None else [f"moved the earlier results aside to {job.moved_aside}"]
    if job.kind == "slurm":
        opts = job.options
        where = f", partition {opts.partition}" if opts is not None and opts.partition else ""
        lines.append(f"submitted {_named(job.kind, job.job_id)} ({opts.nodes if opts else 1} node(s){where})")
        how = f"follow:  {command('status', job.folder)}    stop: {command('cancel', job.folder)}"
    else:
        lines.append(f"submitted {_named(job.kind, job.job_id)} to {job.address}")
        how = (
            f"stop:    {command('cancel', job.folder)}"
            if job.recorded
            else f"stop:    ray job stop --address {job.address} {job.job_id}"
        )
    return [*lines, f"results: {job.folder}", f"logs:    {job.log}", how]


def ended_line(job: Submitted, ended: Ended) -> str:
    """How a followed job ended, with the runs it recorded when its table was read."""
    experiment = Path(job.folder.rstrip("/")).name
    runs = f"{ended.stats.runs_done} runs" if ended.stats is not None else "results"
    return f"{experiment}: {_named(job.kind, job.job_id)} {ended.state}; {runs} in {job.folder}"


def unfollowed_line(job: Submitted) -> str:
    """What Ctrl-C while following says: the job keeps running, and how to reach it."""
    how = (
        f"{command('status', job.folder)} / {command('cancel', job.folder)}"
        if job.kind == "slurm"
        else f"ray job stop --address {job.address} {job.job_id} stops it"
    )
    return f"stopped following; {_named(job.kind, job.job_id)} keeps running ({how})"


def status_line(folder: str | Path) -> str | None:
    """One line on the cluster job behind ``folder``, for ``sweeper status``; None if there is none."""
    from sweeper.submit import record

    sub = record.load(folder)
    if sub is None:
        return None
    try:
        if sub.kind == "slurm":
            from sweeper.submit import sbatch

            st = sbatch.state(sub.job_id)
            text = f"{_named(sub.kind, sub.job_id)}: {st.state}"
            if st.reason not in ("", "None"):
                text += f" ({st.reason})"
            if st.nodes and st.nodes != "(null)":
                text += f" on {st.nodes}"
            if st.restarts:
                text += f", requeued {st.restarts}x"
            if st.elapsed:
                text += f", elapsed {st.elapsed}"
        else:
            from sweeper.submit import rayjobs

            text = (
                f"{_named(sub.kind, sub.job_id)} at {sub.address}: {rayjobs.status(sub.address, sub.job_id)}"
            )
    except SweeperError as exc:
        text = f"{sub.kind} job {sub.job_id}: state unknown ({str(exc).splitlines()[0]})"
    if sub.cancelled_at:
        text += f"; cancelled at {sub.cancelled_at[:19]}"
    return text + f"; log {sub.log}"


def folder_status(folder: str) -> str:
    """What ``sweeper status`` prints: the status of the results ``folder`` (a path or a URI), then
    the cluster job behind it when it was submitted; a submitted job whose driver has not started
    yet has no results to read, and says so."""
    from sweeper.results.status import experiment_status, format_status
    from sweeper.results.store import readable

    cluster = status_line(folder)
    try:
        with readable(folder) as path:
            text = format_status(experiment_status(path))
    except SweeperError:
        if cluster is None:
            raise
        text = f"{folder}: no runs yet (the job has not started the driver)"
    return text if cluster is None else f"{text}\n  cluster: {cluster}"


def _try_record(sub: Submission) -> bool:
    """Keep ``submission.json`` where the results land, when this machine sees that folder too."""
    from sweeper.submit import record

    try:
        Path(sub.folder).mkdir(parents=True, exist_ok=True)
        record.save(sub, Path(sub.folder))
    except OSError:
        return False
    return True


def _refuse_second_job(folder: Path) -> None:
    from sweeper.submit import record, sbatch

    earlier = record.load(folder) if folder.is_dir() else None
    if earlier is None or earlier.kind != "slurm":
        return
    st = sbatch.state(earlier.job_id)
    if st.active:
        raise SweeperError(
            f"{folder} is being written by Slurm job {earlier.job_id} ({st.state})"
            f"\n  fix: wait for it, or stop it with: {command('cancel', folder)}"
        )
