"""`sweeper` on the command line: a thin face over the Python API (sweeper.api and friends).

Heavy modules (ray, optuna, pyarrow, pandas) are imported inside the handlers so `sweeper --help`
stays instant. Exit codes (README, "Exit codes"): 0 the command did its work (a sweep with at least one
complete or pruned run, even if others failed: the summary lists them); 1 a sweep in which no run
completed; 2 an error sweeper raises on purpose (bad input, an unusable objective, a sweep stopped by
max_failures or by its first runs failing alike), printed as one message; 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sweeper.api import SweepResult

# --flag -> (type, help) of the keywords of sweeper.submit.slurm() one flag each sets; every one of
# them, and --slurm-profile, needs --slurm.
SLURM_FLAGS: dict[str, tuple[type[int] | type[str], str]] = {
    "nodes": (int, "Slurm nodes (default 1)"),
    "partition": (str, "Slurm partition"),
    "time": (str, "Slurm time limit, e.g. 2:00:00 or 1-00:00:00"),
    "cpus_per_node": (int, "CPUs per node (also what each Ray node offers)"),
    "gpus_per_node": (str, "GPUs per node, e.g. 4 or a100:4"),
    "mem_per_node": (str, "memory per node, e.g. 64G"),
    "account": (str, "Slurm account to charge"),
    "qos": (str, "Slurm quality of service"),
}


def _launch(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    if _wants_cluster(args):  # --slurm / --submit: the same sweep, run by a cluster job
        return _launch_cluster(args)
    from sweeper.api import launch

    sweep = launch(
        args.sweep_file,
        results=args.results,
        backend=args.backend,
        address=args.address,
        fresh=args.fresh,
        retry_failed=args.retry_failed,
        progress=not args.quiet,
        profile=args.profile,
        mlflow=args.mlflow,
    )
    return _print_summary(sweep, args.results)


def _dry_run(args: argparse.Namespace) -> int:
    """``launch --dry-run``: every check a launch makes, then what it would do; nothing runs."""
    from sweeper.engine.plan import dry_run
    from sweeper.results.folder import experiment_folder
    from sweeper.results.store import is_uri, join
    from sweeper.spec.model import load_spec

    spec = load_spec(args.sweep_file)
    folder = join(args.results, spec.name) if is_uri(args.results) else experiment_folder(spec, args.results)
    lines = dry_run(spec, folder, args.sweep_file)
    if args.slurm or args.submit:  # checked here, as the job would run it; nothing goes to the cluster
        lines.append(f"  (--{'slurm' if args.slurm else 'submit'}: nothing was submitted)")
    print("\n".join(lines))
    return 0


def _wants_cluster(args: argparse.Namespace) -> bool:
    """Whether ``launch`` should submit rather than run here; refuses cluster flags given alone."""
    from sweeper.errors import SweeperError

    given = [flag for flag in (*SLURM_FLAGS, "slurm_profile") if getattr(args, flag, None) is not None]
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
    if args.submit and (args.fresh or args.retry_failed):
        raise SweeperError(
            "--fresh and --retry-failed are not passed to Ray Jobs yet\n  fix: move the "
            "results aside on the cluster, or run the job without them"
        )
    return bool(args.slurm or args.submit)


def _launch_cluster(args: argparse.Namespace) -> int:
    """Submit the sweep as a Slurm job or a Ray Job and say so; --wait follows it (exit 0: it succeeded)."""
    from sweeper import submit
    from sweeper.submit.jobs import ended_line, submitted_lines, unfollowed_line

    if args.slurm:
        options = {flag: getattr(args, flag) for flag in SLURM_FLAGS}
        job = submit.slurm(
            args.sweep_file,
            results=args.results,
            fresh=args.fresh,
            retry_failed=args.retry_failed,
            profile=args.slurm_profile,
            **options,
        )
    else:
        job = submit.ray_job(args.sweep_file, args.submit, results=args.results)
    print("\n".join(submitted_lines(job)))
    if not args.wait:
        return 0
    try:
        ended = submit.wait(job)
    except KeyboardInterrupt:
        print(f"\n{unfollowed_line(job)}", file=sys.stderr)
        return 130
    print(ended_line(job, ended))
    return 0 if ended.ok else 1


def _cancel(args: argparse.Namespace) -> int:
    from sweeper import submit

    what = submit.job_name(args.folder)
    final = submit.cancel(args.folder, grace_s=args.grace)
    print(f"cancelled {what}: now {final}; finished runs kept in {args.folder}")
    return 0


def _job(args: argparse.Namespace) -> int:
    from sweeper.submit.job_entry import run_job

    # the launch's exit code, so that a sweep none of whose runs completed is a FAILED Ray job
    return _print_summary(run_job(args.sweep_file, args.results), args.results)


def _status(args: argparse.Namespace) -> int:
    from sweeper.submit.jobs import folder_status

    print(folder_status(args.folder))
    return 0


def _print_summary(sweep: SweepResult, results: str) -> int:
    """Print what the sweep launched into ``results`` did; the exit code: 1 when no run completed,
    else 0."""
    from sweeper.engine.progress import summary
    from sweeper.errors import command
    from sweeper.results.store import is_uri, join
    from sweeper.results.values import best_per_setting, best_trial

    s = sweep.stats
    # on a URI, sweep.path is the driver's local staging copy: name the bucket instead
    shown = join(results, sweep.spec.name) if is_uri(results) else sweep.path
    table = sweep.table  # read once: sweep.best would read the table again (1 s at 10^6 rows)
    best = best_trial(table, sweep.spec)
    metrics = [m.name for m in sweep.spec.metrics]
    per_setting = best_per_setting(table, sweep.spec)
    print("\n".join(summary(s, sweep.spec.name, table, best, shown, metrics, per_setting)))
    if sweep.spec.compare is not None and s.counts.get("complete", 0):  # the next step, ready to paste
        print(f"verdict: {command('report', shown)}  (the hypothesis tested, with figures)")
    if s.runs_done and not (s.counts.get("complete", 0) or s.counts.get("pruned", 0)):
        print(f"no run completed: every one of the {s.runs_done} runs failed (exit code 1)", file=sys.stderr)
        return 1
    return 0


def _rerun(args: argparse.Namespace) -> int:
    """Exit 0 when the rerun matches its recorded row bit for bit, 1 when it differs or fails."""
    from sweeper.engine.rerun import describe, rerun

    r = rerun(args.dir, args.trial, args.replicate, record=args.record, pdb=args.pdb)
    sys.stdout.write(describe(r, written=args.record))
    return 0 if r.matches else 1


def _errors(args: argparse.Namespace) -> int:
    from sweeper.results.failures import describe_errors
    from sweeper.results.store import readable
    from sweeper.results.table import check_results_folder

    with readable(args.dir) as folder:
        sys.stdout.write(describe_errors(check_results_folder(folder), args.trial))
    return 0


def _table(args: argparse.Namespace) -> int:
    from sweeper.analysis import summary
    from sweeper.report.render import format_table
    from sweeper.results.store import readable

    with readable(args.dir) as folder:
        table = summary(folder, by=args.by)
    rows = len(table)
    if args.top is not None and args.top < rows:
        table = table.head(args.top)
    sys.stdout.write(format_table(table, args.format))
    if len(table) < rows:
        print(f"({len(table)} of {rows} rows shown: the best by the primary metric)", file=sys.stderr)
    if table.attrs.get("partial"):  # mid-sweep: say what the ranking leaves out
        print(f"({table.attrs['partial']} trials still missing replicates are not shown)", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    from sweeper.results.store import readable

    with readable(args.dir) as folder:
        return _report_on(folder, args)


def _report_on(folder: Path, args: argparse.Namespace) -> int:
    """``sweeper report`` on ``folder``: ``args.dir`` itself, or a copy of its URI that goes after."""
    import json

    from sweeper.report.build import verdict_json, write_report
    from sweeper.results.folder import recorded_tracking
    from sweeper.results.store import Uploader, is_uri, join

    if args.json:
        print(json.dumps(verdict_json(folder), indent=2, ensure_ascii=False))
        return 0
    up = Uploader(folder, args.dir).baseline() if is_uri(args.dir) else None
    rep = write_report(folder)
    html: Path | str = rep.html
    if up is not None:
        up.push()  # the report goes back beside the table (the copy it was written in goes)
        html = join(args.dir, rep.html.relative_to(folder).as_posix())
        print(f"report uploaded to {args.dir.rstrip('/')}/report/")
    if rep.verdict is not None:
        print(rep.verdict)
    print(f"report: {html}  (and {rep.markdown.name}, {len(rep.figures)} figures)")
    uri, experiment = recorded_tracking(folder, args.mlflow, args.mlflow_experiment)
    if uri:
        from sweeper.errors import SweeperError
        from sweeper.integrations.mlflow import MlflowMirror, answering

        try:
            with answering(uri):
                run = MlflowMirror(folder, uri, experiment).log_verdict()
        except SweeperError as exc:
            if args.mlflow:  # asked for now: the command did not do what it was told
                raise
            print(f"warning: the report is written, but {exc}", file=sys.stderr)  # the launch's MLflow
            return 0
        print(f"mlflow: verdict logged to run {run} at {uri}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from sweeper.integrations.mlflow import MlflowMirror, answering
    from sweeper.results.store import readable

    with readable(args.dir) as folder:
        mirror = MlflowMirror(folder, args.mlflow, args.mlflow_experiment)
        with answering(args.mlflow):
            n = mirror.sync(settle=0.0)
            run = mirror.log_verdict()
    print(
        f"mlflow: {n} runs logged ({mirror.runs} in all) to experiment {mirror.experiment!r}"
        f" at {args.mlflow}; verdict on run {run}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    import signal

    from sweeper.report.live import make_server
    from sweeper.results.store import followed

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill PID` ends it as Ctrl-C does
    with contextlib.suppress(KeyboardInterrupt), followed(args.dir) as (folder, pull):
        server = make_server(folder, host=args.host, port=args.port, every=args.every, pull=pull)
        host, port = str(server.server_address[0]), int(server.server_address[1])
        print(f"serving the live report of {args.dir} at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from sweeper.integrations.dashboard import run_dashboard
    from sweeper.results.store import followed

    with contextlib.suppress(KeyboardInterrupt), followed(args.dir) as (folder, pull):  # Ctrl-C ends it
        run_dashboard(folder, host=args.host, port=args.port, every=args.every, pull=pull)
    return 0


def _components(args: argparse.Namespace) -> int:
    from sweeper.results.components import describe
    from sweeper.results.store import readable

    with readable(args.dir) as folder:
        sys.stdout.write(describe(folder, args.trial))
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from sweeper.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


class _Version(argparse.Action):
    """``--version``, read from the installed package's metadata only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object, **_kw: object) -> None:
        from importlib.metadata import version

        print(f"sweeper {version('sweeper')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeper", description="Run machine-learning experiments as seeded variable-space sweeps."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print sweeper's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("launch", help="run (or resume) the sweep a sweep file describes")
    p.add_argument("sweep_file", help="the sweep file (YAML)")
    from sweeper.backends import BACKENDS
    from sweeper.report.render import FORMATS

    p.add_argument(
        "--backend",
        choices=tuple(BACKENDS),
        default="ray",
        help="; ".join(f"{name}: {what}" for name, what in BACKENDS.items()) + " (default: ray)",
    )
    p.add_argument("--address", help="a running Ray cluster: auto, HOST:PORT or ray://HOST:PORT")
    p.add_argument(
        "--results",
        default="results",
        help="results root; the experiment's folder is RESULTS/<experiment> (default: results)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="move an existing results folder aside (renamed with a timestamp) and start over",
    )
    p.add_argument(
        "--retry-failed",
        action="store_true",
        help="on resume, run failed and timed-out replicates again (default: keep them)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument(
        "--profile",
        action="store_true",
        help="print where the time went: spec, resume, components, Ray start, runs, compaction, shutdown",
    )
    p.add_argument("--mlflow", metavar="URI", help="mirror every run to this MLflow tracking URI")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check the sweep file and its objective, say what the launch would do (runs, results"
        " folder, seeds, the first trials) and stop: nothing runs, nothing is written",
    )
    _add_cluster_arguments(p)
    p.set_defaults(handler=_launch)

    p = _folder_command(sub, "table", "the summary table: one row per trial, ranked")
    p.add_argument("--by", help="group over the other variables: VAR[,VAR] (e.g. --by model)")
    p.add_argument("--top", type=_positive, metavar="N", help="only the N best rows (default: all)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: table)",
    )
    p.set_defaults(handler=_table)

    p = _folder_command(sub, "report", "test the hypothesis, write DIR/report/ (HTML, MD, PNG)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print only the verdict as JSON (supported, effect, ci_low, ci_high, "
        "p_value, test, n, ...) and write nothing",
    )
    p.add_argument("--mlflow", metavar="URI", help="also log the verdict here (default: the launch's)")
    p.add_argument("--mlflow-experiment", help="MLflow experiment name (default: the experiment's)")
    p.set_defaults(handler=_report)

    p = _folder_command(sub, "export", "log a results folder's runs and verdict to MLflow")
    p.add_argument("--mlflow", metavar="URI", required=True, help="MLflow tracking URI")
    p.add_argument("--mlflow-experiment", help="MLflow experiment name (default: the experiment's)")
    p.set_defaults(handler=_export)

    p = _folder_command(sub, "serve", "serve the report on 127.0.0.1, re-rendered as rows land")
    _serving(
        p,
        8000,
        "port (default: 8000; 0 picks a free one)",
        "render at most this often, in seconds (default: 3)",
    )
    p.set_defaults(handler=_serve)

    p = _folder_command(sub, "dashboard", "optuna-dashboard on the study rebuilt from the trial table")
    _serving(p, 8080, "port (default: 8080)", "add finished trials this often (s, default 3)")
    p.set_defaults(handler=_dashboard)

    p = _folder_command(sub, "components", "datasets, jobs, models ... the trials used and made")
    p.add_argument("--trial", type=int, help="only the components linked to this trial")
    p.set_defaults(handler=_components)

    p = _folder_command(
        sub, "rerun", "run one recorded run again, here, in the foreground; compare its metrics"
    )
    p.add_argument("trial", type=int, help="the trial id")
    p.add_argument("--replicate", type=int, default=0, help="which replicate (default 0)")
    p.add_argument("--record", action="store_true", help="write the rerun into the table as a new attempt")
    p.add_argument("--pdb", action="store_true", help="drop into the debugger where the objective raises")
    p.set_defaults(handler=_rerun)

    p = _folder_command(sub, "errors", "the tracebacks of failed runs, grouped by distinct error")
    p.add_argument("--trial", type=int, help="every failed run of this trial, in full")
    p.set_defaults(handler=_errors)

    p = sub.add_parser("status", help="counts, best so far, runs in flight and whether it can be resumed")
    p.add_argument("folder", help="an experiment's results folder, e.g. results/quickstart")
    p.set_defaults(handler=_status)
    p = sub.add_parser(
        "schema", help="print the sweep file's JSON Schema (for editors; sweeper/spec/sweep.schema.json)"
    )
    p.set_defaults(handler=_schema)

    p = sub.add_parser("cancel", help="stop a submitted sweep (Slurm job or Ray job); finished runs stay")
    p.add_argument("folder", help="the experiment's results folder (RESULTS/<experiment>)")
    p.add_argument(
        "--grace",
        type=float,
        default=60.0,
        help="seconds to let the driver write what finished before a hard stop (default 60)",
    )
    p.set_defaults(handler=_cancel)

    p = sub.add_parser("job", help="what a Ray Job runs on the cluster (launch --submit starts it)")
    p.add_argument("sweep_file", help="the sweep file, in the job's working directory")
    p.add_argument("--results", required=True, help="a path the cluster writes, or a URI (s3://, gs://)")
    p.set_defaults(handler=_job)
    return parser


def _positive(text: str) -> int:
    """A count of 1 or more, or argparse's usage error naming the flag."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _folder_command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """A command that reads one results folder, given as its first argument (a path or a URI)."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("dir", help="a results folder, RESULTS/<experiment> (RESULTS may be s3://bucket/prefix)")
    return p


def _serving(parser: argparse.ArgumentParser, port: int, port_help: str, every_help: str) -> None:
    """--port, --host and --every of the commands that serve a live view (serve, dashboard)."""
    parser.add_argument("--port", type=int, default=port, help=port_help)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--every", type=float, default=3.0, help=every_help)


def _add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
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
    for flag, (kind, text) in SLURM_FLAGS.items():
        g.add_argument("--" + flag.replace("_", "-"), type=kind, help=text)
    g.add_argument(
        "--submit",
        metavar="URL",
        help="submit as a Ray Job to the cluster whose dashboard is at URL "
        "(http://HEAD:8265); --results must be a path or URI the cluster can write",
    )
    g.add_argument(
        "--wait", action="store_true", help="with --slurm or --submit: follow the job until it ends"
    )


def main(argv: Sequence[str] | None = None) -> int:
    from sweeper import errors

    args = build_parser().parse_args(argv)
    errors.SHELL = True
    try:
        return int(args.handler(args))
    except errors.SweeperError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # sweeper.engine.signals.Interrupted says how to resume
        print(f"{exc or 'interrupted'}", file=sys.stderr)
        return 130
    finally:
        errors.SHELL = False


def run() -> None:
    """The ``sweeper`` command: :func:`main`, then an exit without the interpreter's teardown when no
    other thread is left. Freeing pandas', SciPy's and scikit-learn's modules one by one took 0.5-0.9 s
    after ``sweeper report`` had written everything (bench/README.md); the atexit handlers still run
    and both streams are flushed. With a thread still running (Ray's, a sweep's) the exit is the
    normal one, which joins it."""
    import atexit
    import os
    import threading

    code = main()
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader that left (`| head`), a closed stream
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
