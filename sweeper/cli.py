"""`sweeper` on the command line: a thin face over the Python API (sweeper.api and friends).

Heavy modules (ray, optuna, pyarrow, pandas) are imported inside the handlers so `sweeper --help`
stays instant. Errors sweeper raises on purpose print as one message with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path


def _launch(args: argparse.Namespace) -> int:
    from sweeper.submit.commands import run_launch, wants_cluster

    if wants_cluster(args):  # --slurm / --submit: the same sweep, run by a cluster job
        return run_launch(args)
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
    _print_summary(sweep)
    return 0


def _local(path: str) -> str:
    """A results folder to read: ``path`` itself, or a fresh local copy of a URI (s3://...)."""
    from sweeper.results.store import is_uri, local_copy

    return str(local_copy(path)) if is_uri(path) else path


def _status(args: argparse.Namespace) -> int:
    from sweeper.errors import SweeperError
    from sweeper.results.status import experiment_status, format_status
    from sweeper.submit.commands import status_line

    cluster = status_line(args.folder)  # the Slurm job or Ray job behind it, if it was submitted
    try:
        print(format_status(experiment_status(_local(args.folder))))
    except SweeperError:
        if cluster is None:
            raise
        print(f"{args.folder}: no runs yet (the job has not started the driver)")
    if cluster is not None:
        print(f"  cluster: {cluster}")
    return 0


def _print_summary(sweep) -> None:  # type: ignore[no-untyped-def]
    s = sweep.stats
    took = (s.last_end - s.first_start) if s.first_start and s.last_end else 0.0
    counts = ", ".join(f"{n} {status}" for status, n in sorted(s.counts.items())) or "no runs"
    print(
        f"{sweep.spec.name}: {s.trials_done} trials, {s.runs_done} runs ({counts})"
        + (f", {s.runs_done / took:.1f} runs/s" if took > 0 else "")
    )
    best = sweep.best
    if best:
        from sweeper.results.status import params_text

        print(
            f"best: trial {best['trial']} {best['metric']}={best['mean']:.6g} "
            f"(mean of {best['n']} replicates) with {params_text(best['params'])}"
        )
    print(f"results: {sweep.path}  (sweeper.load({str(sweep.path)!r}))")


def _table(args: argparse.Namespace) -> int:
    from sweeper.analysis import summary
    from sweeper.report.build import format_table

    table = summary(_local(args.dir), by=args.by)
    sys.stdout.write(format_table(table, args.format))
    if table.attrs.get("partial"):  # mid-sweep: say what the ranking leaves out
        print(f"({table.attrs['partial']} trials still missing replicates are not shown)", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from sweeper.report.build import verdict_json, write_report
    from sweeper.results.store import Uploader, is_uri

    uri = args.dir if is_uri(args.dir) else None
    args.dir = _local(args.dir)
    if args.json:
        print(json.dumps(verdict_json(args.dir), indent=2, ensure_ascii=False))
        return 0
    up = Uploader(Path(args.dir), uri).baseline() if uri else None
    rep = write_report(args.dir)
    if up is not None:
        up.push()  # the report goes back beside the table
        print(f"report uploaded to {uri}/report/")
    if rep.verdict is not None:
        print(rep.verdict.sentence)
        for w in rep.verdict.main.warnings:
            print(f"  warning: {w}")
    print(f"report: {rep.html}  (and {rep.markdown.name}, {len(rep.figures)} figures)")
    uri, experiment = _tracking(args)
    if uri:
        from sweeper.integrations.mlflow import MlflowMirror

        run = MlflowMirror(args.dir, uri, experiment).log_verdict()
        print(f"mlflow: verdict logged to run {run} at {uri}")
    return 0


def _tracking(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--mlflow, else what the launch recorded in experiment.json (the spec's tracking: or --mlflow)."""
    from sweeper.results.table import EXPERIMENT_JSON, read_json

    path = Path(args.dir) / EXPERIMENT_JSON
    rec = (read_json(path).get("tracking") if path.is_file() else None) or {}
    uri = args.mlflow or rec.get("mlflow_uri")
    return uri, args.mlflow_experiment or rec.get("mlflow_experiment")


def _export(args: argparse.Namespace) -> int:
    from sweeper.integrations.mlflow import MlflowMirror

    mirror = MlflowMirror(_local(args.dir), args.mlflow, args.mlflow_experiment)
    n = mirror.sync(settle=0.0)
    run = mirror.log_verdict()
    print(
        f"mlflow: {n} runs logged ({mirror.runs} in all) to experiment {mirror.experiment!r}"
        f" at {args.mlflow}; verdict on run {run}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from sweeper.report.live import make_server

    server = make_server(args.dir, host=args.host, port=args.port, every=args.every)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    print(f"serving the live report of {args.dir} at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from sweeper.integrations.dashboard import run_dashboard

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it ends
        run_dashboard(args.dir, host=args.host, port=args.port, every=args.every)
    return 0


def _components(args: argparse.Namespace) -> int:
    from sweeper.results.components import describe

    sys.stdout.write(describe(_local(args.dir), args.trial))
    return 0


def _schema(args: argparse.Namespace) -> int:
    import json

    from sweeper.spec.schema import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sweeper", description="Run machine-learning experiments as seeded variable-space sweeps."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("launch", help="run (or resume) the sweep a sweep file describes")
    p.add_argument("sweep_file", help="the sweep file (YAML)")
    from sweeper.backends import BACKENDS
    from sweeper.report.build import FORMATS

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
    from sweeper.submit.commands import add_cancel_parser, add_launch_arguments

    add_launch_arguments(p)
    p.set_defaults(handler=_launch)

    p = sub.add_parser("table", help="the summary table: one row per trial, ranked")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument("--by", help="group over the other variables: VAR[,VAR] (e.g. --by model)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="output format (default: table)",
    )
    p.set_defaults(handler=_table)

    p = sub.add_parser("report", help="test the hypothesis, write DIR/report/ (HTML, MD, PNG)")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print only the verdict as JSON (supported, effect, ci_low, ci_high, "
        "p_value, test, n, ...) and write nothing",
    )
    p.add_argument("--mlflow", metavar="URI", help="also log the verdict here (default: the launch's)")
    p.add_argument("--mlflow-experiment", help="MLflow experiment name (default: the experiment's)")
    p.set_defaults(handler=_report)

    p = sub.add_parser("export", help="log a results folder's runs and verdict to MLflow")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument("--mlflow", metavar="URI", required=True, help="MLflow tracking URI")
    p.add_argument("--mlflow-experiment", help="MLflow experiment name (default: the experiment's)")
    p.set_defaults(handler=_export)

    p = sub.add_parser("serve", help="serve the report on 127.0.0.1, re-rendered as rows land")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument(
        "--every", type=float, default=3.0, help="render at most this often, in seconds (default: 3)"
    )
    p.set_defaults(handler=_serve)

    p = sub.add_parser("dashboard", help="optuna-dashboard on the study rebuilt from the trial table")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--every", type=float, default=3.0, help="add finished trials this often (s, default 3)")
    p.set_defaults(handler=_dashboard)

    p = sub.add_parser("components", help="datasets, jobs, models ... the trials used and made")
    p.add_argument("dir", help="a results folder (RESULTS/<experiment>)")
    p.add_argument("--trial", type=int, help="only the components linked to this trial")
    p.set_defaults(handler=_components)

    p = sub.add_parser("status", help="counts, best so far, runs in flight and whether it can be resumed")
    p.add_argument("folder", help="an experiment's results folder, e.g. results/quickstart")
    p.set_defaults(handler=_status)
    p = sub.add_parser(
        "schema", help="print the sweep file's JSON Schema (for editors; sweeper/spec/sweep.schema.json)"
    )
    p.set_defaults(handler=_schema)
    add_cancel_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sweeper.errors import SweeperError

    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except SweeperError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # sweeper.engine.signals.Interrupted says how to resume
        print(f"\n{exc or 'interrupted'}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
