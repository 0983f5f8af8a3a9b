"""The cluster face of the CLI and its plain parts: flag checks, records, Ray Job set-up, progress.

Everything that needs a running Slurm or Ray lives in tests/integration (test_slurm, test_rayjobs).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import sweeper
from sweeper import submit
from sweeper.errors import SweeperError
from sweeper.spec.model import load_spec
from sweeper.submit import rayjobs, record
from sweeper.submit.follow import table_stats
from tests.conftest import REPO, sweep_spec


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "2"], "--nodes only apply to Slurm jobs"),
        (["--partition", "gpu", "--time", "1:00"], "--partition, --time only apply to Slurm jobs"),
        (["--wait"], "--wait follows a submitted job"),
        (["--slurm", "--submit", "http://h:8265"], "--slurm and --submit exclude each other"),
        (["--slurm", "--backend", "local"], "--backend local runs in this process"),
        (["--submit", "http://h:8265", "--address", "h:6379"], "--address names a Ray cluster"),
        (["--submit", "http://h:8265"], "is relative"),  # default --results: only this machine has it
        (["--slurm", "--partition", "gpu; rm -rf ~"], "flag.partition"),
    ],
)
def test_cluster_flags_are_checked_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "experiment: e\nobjective: m:f\nmetrics: [a: maximize]\n"
        "variables: {x: {choice: [1, 2]}}\nsearch: {method: grid}\n"
    )
    done = cli("launch", str(sweep), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert not (tmp_path / "results").exists()


def test_cancel_without_a_submission_says_how_to_stop(tmp_path: Path) -> None:
    done = cli("cancel", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 2 and "no submission.json" in done.stderr and "Ctrl-C" in done.stderr


def test_submission_record_round_trips(tmp_path: Path) -> None:
    assert record.load(tmp_path) is None and submit.status_line(tmp_path) is None
    sub = record.Submission(
        "ray-job", "sweeper-e-1", str(tmp_path), address="http://127.0.0.1:1", log="ray job logs ..."
    )
    record.save(sub, tmp_path)
    assert record.load(tmp_path) == sub
    line = submit.status_line(tmp_path)  # nothing listens there: says so instead of failing
    assert line is not None and line.startswith("ray-job job sweeper-e-1: state unknown")


def test_ray_job_carries_the_sweep_folder_and_this_sweeper(tmp_path: Path) -> None:
    sweep = tmp_path / "my sweeps" / "s.yaml"
    sweep.parent.mkdir()
    sweep.write_text("")
    env = rayjobs.runtime_env(sweep, env_vars={"A": "1"})
    assert env["working_dir"] == str(sweep.parent.resolve())
    assert env["py_modules"] == [str(Path(sweeper.__file__).resolve().parent)]
    assert {"results", ".git", "*.parquet"} <= set(env["excludes"])
    assert env["env_vars"]["RAY_JOB_STOP_SIGNAL"] == "SIGINT" and env["env_vars"]["A"] == "1"
    entry = rayjobs.entrypoint(sweep, "s3://b/it's here")
    assert shlex.split(entry) == [
        "python",
        "-m",
        "sweeper",
        "job",
        "s.yaml",
        "--results",
        "s3://b/it's here",
    ]
    assert rayjobs.check_results("gs://b/r") == "gs://b/r"
    assert rayjobs.check_results("/shared/r") == "/shared/r"
    with pytest.raises(SweeperError, match="relative"):
        rayjobs.check_results("results")


def test_follow_rebuilds_the_engines_counts_from_the_table(tmp_path: Path) -> None:
    spec = load_spec(sweep_spec(), root=REPO / "tests")
    empty = table_stats(tmp_path / "t", spec, 6)
    assert empty.runs_done == 0 and empty.trials_total == 6
    done = sweeper.launch(spec, results=tmp_path, backend="local")
    stats = table_stats(tmp_path / "t", spec, 6)
    assert (stats.runs_done, stats.trials_done, stats.counts) == (12, 6, {"complete": 12})
    assert stats.best_trial == done.best["trial"]
    assert stats.best_value == pytest.approx(done.best["mean"])


def test_cluster_submission_is_a_python_api(tmp_path: Path) -> None:
    from sweeper.errors import SpecError

    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "experiment: e\nobjective: m:f\nmetrics: [a: maximize]\n"
        "variables: {x: {choice: [1, 2]}}\nsearch: {method: grid}\n"
    )
    with pytest.raises(SpecError, match=r"flag\.partition"):  # checked before anything is written
        submit.slurm(sweep, results=tmp_path / "r", partition="gpu; rm -rf ~")
    with pytest.raises(SweeperError, match="relative"):
        submit.ray_job(sweep, "http://127.0.0.1:1", results="results")
    with pytest.raises(SweeperError, match=r"no submission\.json"):
        submit.cancel(tmp_path)
    assert not (tmp_path / "r").exists() and submit.job_name(tmp_path) is None


def test_argparse_lives_in_the_cli_alone() -> None:
    parsing = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "sweeper").rglob("*.py")
        if p.name != "cli.py" and ("argparse" in p.read_text() or "sys.argv" in p.read_text())
    )
    # ray_nodes is the sbatch script's node-count probe: positional arguments, no parser
    assert parsing == ["sweeper/submit/ray_nodes.py"]
