"""The CLI's cluster face: ``launch --slurm`` / ``launch --submit URL``, ``cancel``, status lines.

sweeper/cli.py stays a thin parser: it adds these options and hands over when one is given. This
module imports nothing heavy at import time, so ``sweeper --help`` stays instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from sweeper.errors import SweeperError

# CLI flag -> SlurmOptions field; every one of them needs --slurm.
SLURM_FLAGS = {
    "nodes": "nodes",
    "partition": "partition",
    "time": "time",
    "cpus_per_node": "cpus_per_node",
    "gpus_per_node": "gpus_per_node",
    "mem_per_node": "mem_per_node",
    "account": "account",
    "qos": "qos",
    "slurm_profile": "profile",
}


def add_launch_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group(
        "cluster submission", "run the same sweep on a Slurm allocation or a running Ray cluster"
    )
    g.add_argument(
        "--slurm",
        action="store_true",
        help="submit as a Slurm job (Ray on the allocation); see cluster/slurm/",
    )
    g.add_argument(
        "--slurm-profile",
        metavar="NAME",
        help="start from cluster/slurm/NAME.yaml (or a path to a profile file)",
    )
    g.add_argument("--nodes", type=int, help="Slurm nodes (default 1)")
    g.add_argument("--partition", help="Slurm partition")
    g.add_argument("--time", help="Slurm time limit, e.g. 2:00:00 or 1-00:00:00")
    g.add_argument("--cpus-per-node", type=int, help="CPUs per node (also what each Ray node offers)")
    g.add_argument("--gpus-per-node", help="GPUs per node, e.g. 4 or a100:4")
    g.add_argument("--mem-per-node", help="memory per node, e.g. 64G")
    g.add_argument("--account", help="Slurm account to charge")
    g.add_argument("--qos", help="Slurm quality of service")
    g.add_argument(
        "--submit",
        metavar="URL",
        help="submit as a Ray Job to the cluster whose dashboard is at URL "
        "(http://HEAD:8265); --results must be a path or URI the cluster can write",
    )
    g.add_argument(
        "--wait", action="store_true", help="with --slurm or --submit: follow the job until it ends"
    )


def wants_cluster(args: argparse.Namespace) -> bool:
    """Whether ``launch`` should submit rather than run here; refuses cluster flags given alone."""
    given = [flag for flag in SLURM_FLAGS if getattr(args, flag, None) is not None]
    if args.slurm and args.submit:
        raise SweeperError("--slurm and --submit exclude each other\n  fix: pick one")
    if given and not args.slurm:
        names = ", ".join("--" + g.replace("_", "-") for g in given)
        raise SweeperError(f"{names} only apply to Slurm jobs\n  fix: add --slurm")
    if args.wait and not (args.slurm or args.submit):
        raise SweeperError(
            "--wait follows a submitted job\n  fix: add --slurm or --submit URL "
            "(a local sweep always runs to the end)"
        )
    if args.backend == "local" and (args.slurm or args.submit):
        raise SweeperError("--backend local runs in this process\n  fix: drop it; cluster jobs use Ray")
    if args.address and (args.slurm or args.submit):
        raise SweeperError(
            "--address names a Ray cluster to drive from here\n  fix: drop it; the job finds its own cluster"
        )
    return bool(args.slurm or args.submit)


def run_launch(args: argparse.Namespace) -> int:
    return _launch_slurm(args) if args.slurm else _launch_ray_job(args)


def _launch_slurm(args: argparse.Namespace) -> int:
    from sweeper.api import experiment_folder, move_aside
    from sweeper.spec import slurm as slurm_options
    from sweeper.spec.model import load_spec
    from sweeper.submit import record, slurm

    sweep_file = Path(args.sweep_file).resolve()
    spec = load_spec(sweep_file)
    raw = {
        field: getattr(args, flag)
        for flag, field in SLURM_FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    flags = slurm_options.parse_options(raw, source="command line", where="flag")
    options = slurm_options.combine(block=spec.slurm, flags=flags, sweep_file=sweep_file)
    results = Path(args.results).resolve()
    folder = experiment_folder(spec, results)
    _refuse_second_job(folder)
    if args.fresh and folder.exists():
        moved = move_aside(folder)
        print(f"moved the earlier results aside to {moved}")
    folder, _ = slurm.prepare(
        experiment=spec.name,
        sweep_file=sweep_file,
        results=results,
        options=options,
        retry_failed=args.retry_failed,
    )
    job_id = slurm.submit(folder)
    log = folder / slurm.SUBDIR / f"slurm-{job_id}.out"
    record.save(
        record.Submission(
            "slurm",
            job_id,
            str(folder),
            log=str(log),
            script=str(folder / slurm.SUBDIR / "job.sbatch"),
            options=slurm.options_dict(options),
        ),
        folder,
    )
    where = f", partition {options.partition}" if options.partition else ""
    print(f"submitted Slurm job {job_id} ({options.nodes} node(s){where})")
    print(f"results: {folder}")
    print(f"logs:    {log}")
    print(f"follow:  sweeper status {folder}    stop: sweeper cancel {folder}")
    if not args.wait:
        return 0

    from sweeper.submit.follow import follow

    def poll() -> tuple[str, bool]:
        st = slurm.state(job_id)
        text = f"slurm {st.state}" + (f" ({st.reason})" if st.reason not in ("", "None") else "")
        return text, st.active

    try:
        _, stats = follow(folder, spec, poll)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; Slurm job {job_id} keeps running "
            f"(sweeper status {folder} / sweeper cancel {folder})",
            file=sys.stderr,
        )
        return 130
    final = slurm.state(job_id)
    print(
        f"{spec.name}: Slurm job {job_id} {final.state} (exit {final.exit_code}); "
        f"{stats.runs_done} runs in {folder}"
    )
    return 0 if final.state == "COMPLETED" and final.exit_code.startswith("0:") else 1


def _launch_ray_job(args: argparse.Namespace) -> int:
    from sweeper.spec.model import load_spec
    from sweeper.submit import rayjobs, record

    sweep_file = Path(args.sweep_file).resolve()
    spec = load_spec(sweep_file)
    results = rayjobs.check_results(args.results)
    if args.fresh or args.retry_failed:
        raise SweeperError(
            "--fresh and --retry-failed are not passed to Ray Jobs yet\n  fix: move the "
            "results aside on the cluster, or run the job without them"
        )
    job_id = rayjobs.submit(args.submit, sweep_file, results, experiment=spec.name)
    folder = f"{results.rstrip('/')}/{spec.name}"
    print(f"submitted Ray job {job_id} to {args.submit}")
    print(f"results: {folder}")
    print(f"logs:    ray job logs --address {args.submit} {job_id}")
    if "://" not in results and _try_record(
        record.Submission(
            "ray-job",
            job_id,
            folder,
            address=args.submit,
            log=f"ray job logs --address {args.submit} {job_id}",
        )
    ):
        print(f"stop:    sweeper cancel {folder}")
    else:  # a URI, or a path only the cluster has: nothing to keep a record in here
        print(f"stop:    ray job stop --address {args.submit} {job_id}")
    if not args.wait:
        return 0
    try:
        state = rayjobs.follow(args.submit, job_id)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; Ray job {job_id} keeps running "
            f"(ray job stop --address {args.submit} {job_id} stops it)",
            file=sys.stderr,
        )
        return 130
    print(f"{spec.name}: Ray job {job_id} {state}; results in {folder}")
    return 0 if state == "SUCCEEDED" else 1


def _try_record(sub: Any) -> bool:
    """Keep ``submission.json`` where the results land, when this machine sees that folder too."""
    from sweeper.submit import record

    try:
        Path(sub.folder).mkdir(parents=True, exist_ok=True)
        record.save(sub, Path(sub.folder))
    except OSError:
        return False
    return True


def _refuse_second_job(folder: Path) -> None:
    from sweeper.submit import record, slurm

    earlier = record.load(folder) if folder.is_dir() else None
    if earlier is None or earlier.kind != "slurm":
        return
    st = slurm.state(earlier.job_id)
    if st.active:
        raise SweeperError(
            f"{folder} is being written by Slurm job {earlier.job_id} ({st.state})"
            f"\n  fix: wait for it, or stop it with: sweeper cancel {folder}"
        )


def add_cancel_parser(sub: Any) -> None:
    p = sub.add_parser("cancel", help="stop a submitted sweep (Slurm job or Ray job); finished runs stay")
    p.add_argument("folder", help="the experiment's results folder (RESULTS/<experiment>)")
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        help="seconds to let the driver write what finished before a hard stop (default 60)",
    )
    p.set_defaults(handler=run_cancel)


def run_cancel(args: argparse.Namespace) -> int:
    from sweeper.submit import record, slurm

    folder = Path(args.folder)
    sub = record.load(folder)
    if sub is None:
        raise SweeperError(
            f"{folder}: no {record.RECORD}, so no cluster job to cancel\n  fix: pass "
            "RESULTS/<experiment> of a sweep launched with --slurm or --submit; stop a "
            "local sweep with Ctrl-C"
        )
    if sub.kind == "slurm":
        final = slurm.cancel(sub.job_id, grace_s=args.grace).state
        what = f"Slurm job {sub.job_id}"
    else:
        from sweeper.submit import rayjobs

        final = rayjobs.stop(sub.address, sub.job_id, wait_s=args.grace + 30)
        what = f"Ray job {sub.job_id}"
    record.save(dataclasses.replace(sub, cancelled_at=dt.datetime.now(dt.UTC).isoformat()), folder)
    print(f"cancelled {what}: now {final}; finished runs kept in {folder}")
    return 0


def status_line(folder: str | Path) -> str | None:
    """One line on the cluster job behind ``folder``, for ``sweeper status``; None if there is none."""
    from sweeper.submit import record

    sub = record.load(folder)
    if sub is None:
        return None
    try:
        if sub.kind == "slurm":
            from sweeper.submit import slurm

            st = slurm.state(sub.job_id)
            text = f"Slurm job {sub.job_id}: {st.state}"
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

            text = f"Ray job {sub.job_id} at {sub.address}: {rayjobs.status(sub.address, sub.job_id)}"
    except SweeperError as exc:
        text = f"{sub.kind} job {sub.job_id}: state unknown ({str(exc).splitlines()[0]})"
    if sub.cancelled_at:
        text += f"; cancelled at {sub.cancelled_at[:19]}"
    return text + f"; log {sub.log}"


def main_status(argv: list[str] | None = None) -> int:
    """``python -m sweeper.submit.commands DIR``: the status line alone (handy in scripts)."""
    args = sys.argv[1:] if argv is None else argv
    for folder in args:
        print(status_line(folder) or f"{folder}: not submitted to a cluster")
    return 0


if __name__ == "__main__":
    sys.exit(main_status())
