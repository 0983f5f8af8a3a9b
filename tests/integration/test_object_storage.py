"""--results s3://... against a real S3 API (moto's server mode on 127.0.0.1): parts stream to the
bucket while the sweep runs, a SIGKILLed driver resumes from the bucket with nothing lost (on the local
backend, and on a two-node Ray cluster whose workers put their own artifacts there), and the read
commands work on the URI."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.integration.live_sweep import RUNS, SWEEP, start, wait_for
from tests.ray_cluster import RayCluster

boto3 = pytest.importorskip("boto3", reason="needs boto3 and moto[server] (pip install -e '.[test]')")


@pytest.fixture
def s3(moto):
    """A moto S3 server on 127.0.0.1 with a bucket; the AWS variables point pyarrow and boto3 at it."""
    return moto[0]


@pytest.fixture
def moto(monkeypatch, tmp_path):
    """The s3 fixture's client and its server's process (a test that stops the bucket answering)."""
    exe = Path(sys.executable).with_name("moto_server")
    if not exe.exists():
        pytest.skip("needs moto[server] (pip install -e '.[test]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(tmp_path / "moto.log", "wb") as log:  # the server holds its own copy
        proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    for k, v in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=url)

    def bucket() -> bool:
        try:
            client.create_bucket(Bucket="sweeps")
            return True
        except Exception:
            assert proc.poll() is None, (tmp_path / "moto.log").read_text()
            return False

    wait_for(bucket, "moto's S3 server", 120)
    yield client, proc
    proc.terminate()
    proc.wait(timeout=30)


def keys(client, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket="sweeps", Prefix=prefix)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeper", *args], capture_output=True, text=True)


@pytest.mark.timeout(600)
def test_killed_driver_resumes_from_the_bucket_with_nothing_lost(tmp_path, s3):
    import sweeper

    uri = "s3://sweeps/team/x"
    driver, _, gate = start(tmp_path, "--results", uri, pause_at=12)
    # parts reach the bucket while the sweep runs, not at its end
    wait_for(
        lambda: [k for k in keys(s3, "team/x/live/trials/") if k.endswith(".parquet")], "a part in the bucket"
    )
    assert "team/x/live/experiment.json" in keys(s3, "team/x/live/")
    assert not any(k.endswith("driver.lock") for k in keys(s3, "team/x/"))
    time.sleep(1.5)  # let the held sweep's last parts go up
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = sweeper.load(f"{uri}/live")
    assert 0 < len(before) < RUNS

    gate.unlink()
    age_heartbeat(s3, "team/x/live/driver.json")
    env = {**os.environ, "SWEEPER_TEST_LOG": str(tmp_path / "log"), "SWEEPER_TEST_GATE": str(gate)}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweeper",
            "launch",
            str(tmp_path / "live.yaml"),
            "--backend",
            "local",
            "--results",
            uri,
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr
    assert f"resuming from {uri}/live" in again.stderr
    assert f"results: {uri}/live  " in again.stdout  # the bucket, not the driver's staging copy
    after = sweeper.load(f"{uri}/live")
    assert len(after) == RUNS and not after.duplicated(["trial", "replicate"]).any()
    kept = after.merge(before, on=["trial", "replicate"], suffixes=("", "_before"))
    assert len(kept) == len(before)  # every row the bucket had before the kill is still there, unchanged
    assert (kept["ended_at"] == kept["ended_at_before"]).all()

    status = cli("status", f"{uri}/live")
    assert status.returncode == 0 and "live: finished" in status.stdout, status.stderr
    assert f"runs: {RUNS}/{RUNS}" in status.stdout
    table = cli("table", f"{uri}/live")
    assert table.returncode == 0 and "loss" in table.stdout
    rep = cli("report", f"{uri}/live")
    assert rep.returncode == 0, rep.stderr
    assert "team/x/live/report/index.html" in keys(s3, "team/x/live/report/")


def test_a_fresh_heartbeat_in_the_bucket_refuses_a_second_driver(tmp_path):
    """The lock rule on object storage (no flock there): a running heartbeat younger than FRESH_S."""
    import datetime as dt

    from sweeper.errors import SweeperError
    from sweeper.results.lock import FRESH_S, check_no_live_driver
    from sweeper.results.table import write_json

    def beat(age: float) -> None:
        at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)
        write_json(
            tmp_path / "driver.json",
            {"state": "running", "pid": 7, "host": "h", "heartbeat_at": at.isoformat()},
        )

    beat(1.0)
    with pytest.raises(SweeperError, match="is being run by another sweeper driver"):
        check_no_live_driver(tmp_path, "s3://b/x")
    beat(FRESH_S + 1)  # a driver that died: resumable
    check_no_live_driver(tmp_path, "s3://b/x")


def age_heartbeat(client, key: str) -> None:
    """Date the dead driver's last heartbeat in the bucket FRESH_S + 1 s back, as waiting out FRESH_S
    would (the rule at the limit is the test above's); the driver is gone, so nothing writes it again."""
    from sweeper.results.lock import FRESH_S

    rec = json.loads(client.get_object(Bucket="sweeps", Key=key)["Body"].read())
    assert rec["state"] == "running"  # killed: it never wrote an end state
    at = dt.datetime.fromisoformat(rec["heartbeat_at"]) - dt.timedelta(seconds=FRESH_S + 1)
    client.put_object(Bucket="sweeps", Key=key, Body=json.dumps({**rec, "heartbeat_at": at.isoformat()}))


@pytest.mark.timeout(600)
def test_ray_workers_put_their_artifacts_in_the_bucket_and_a_killed_driver_resumes(tmp_path, s3):
    """A head and a worker node whose processes have no AWS variables: the runs get the driver's
    (endpoint and credentials) through the run context, read the shared job's output from the bucket,
    put their artifact folders there themselves; the driver is SIGKILLed mid-sweep and a second
    one resumes from the bucket with every row exactly once."""
    import sweeper
    from sweeper.results.components import load_components
    from sweeper.results.history import load_history
    from sweeper.results.store import readable

    uri, prefix = "s3://sweeps/team/ray", "team/ray/live/"
    log, gate = tmp_path / "log", tmp_path / "gate"
    log.mkdir()
    gate.touch()
    sweep = {
        **SWEEP,
        "objective": "live_objectives:stored",
        "components": {"features": {"job": "live_objectives:features"}, "source": {"value": {"n": 7}}},
    }
    (tmp_path / "live.yaml").write_text(yaml.safe_dump(sweep))
    gated = {  # what the runs read: the workers' environment is the nodes', not the driver's
        "SWEEPER_TEST_LOG": str(log),
        "SWEEPER_TEST_GATE": str(gate),
        "SWEEPER_TEST_PAUSE_AT": "10",
        "SWEEPER_TEST_SLEEP": "0.15",
    }
    here = str(Path(__file__).parent)
    cluster = RayCluster(tmp_path, nodes=2, cpus=1, extra_path=[here], env=gated)
    cluster.env = {k: v for k, v in cluster.env.items() if not k.startswith("AWS_")}
    aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}

    address = ("--address", cluster.address)

    def driver(name: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"{name}.err", "wb") as err:  # the child holds its own copy
            return subprocess.Popen(
                [sys.executable, "-m", "sweeper", "launch", "live.yaml", "--results", uri, "-q", *address],
                env={"TMPDIR": str(tmp_path), **cluster.env, **aws},  # the killed one's staging copy
                cwd=tmp_path,
                stderr=err,
            )

    def artifacts() -> int:
        return sum(k.endswith("/model.txt") for k in keys(s3, prefix + "artifacts/"))

    with cluster:
        first = driver("first")
        try:
            wait_for(lambda: first.poll() is not None or artifacts() >= 8, "8 runs' artifacts", 300)
            assert first.poll() is None, (tmp_path / "first.err").read_text()
            # the rows of the first two runs (one a task until a run has worked); later runs come back in
            # batches, and a batch holding a run stopped at the gate returns none of its rows
            wait_for(lambda: len(sweeper.load(f"{uri}/live")) >= 2, "2 rows in the bucket's trial table", 60)
        finally:
            first.send_signal(signal.SIGKILL)  # also when a wait fails: no driver outlives the test
            first.wait()
        before = sweeper.load(f"{uri}/live")
        assert 2 <= len(before) < RUNS
        age_heartbeat(s3, prefix + "driver.json")
        gate.unlink()
        second = driver("second")
        assert second.wait(timeout=300) == 0, (tmp_path / "second.err").read_text()
    assert f"resuming from {uri}/live" in (tmp_path / "second.err").read_text()

    after = sweeper.load(f"{uri}/live")
    assert len(after) == RUNS and not after.duplicated(["trial", "replicate"]).any()
    assert (after["status"] == "complete").all(), after["error"].dropna().tolist()
    kept = after.merge(before, on=["trial", "replicate"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["ended_at"] == kept["ended_at_before"]).all()
    assert after["node"].nunique() == 2  # runs ran on the worker node too, not only beside the driver
    objects = set(keys(s3, prefix + "artifacts/"))
    for row in after.itertuples():
        key = f"{prefix}artifacts/trial-{row.trial}/rep-{row.replicate}/model.txt"
        assert key in objects, f"no artifact for trial {row.trial} rep {row.replicate}"
    body = s3.get_object(Bucket="sweeps", Key=key)["Body"].read().decode()
    assert body.startswith(f"{row.x} {row.y} {row.seed}\nscaled by 2\n")  # the job's output ...
    assert '"n": 7' in body and "sweeper-results-" not in body  # ... read from the bucket, not staging

    with readable(f"{uri}/live") as folder:
        models = load_components(folder).query("name == 'model' and role == 'output'")
        steps = load_history(folder).drop_duplicates(["trial", "replicate", "step"])
    # every run has its link, those the first driver recorded just before its SIGKILL included
    assert len(models) == RUNS
    assert set(zip(models["trial"], models["replicate"], strict=True)) == set(
        zip(after["trial"], after["replicate"], strict=True)
    )
    assert all(u.startswith(f"{uri}/live/artifacts/trial-") for u in models["uri"]), models["uri"].tolist()
    assert len(steps) == 3 * RUNS  # every run's learning curve, through the driver


def get_json(url: str):
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def listening(proc: subprocess.Popen[str]) -> str:
    """The http://127.0.0.1:PORT/ a `sweeper serve` or `sweeper dashboard` prints first."""
    line = proc.stdout.readline() if proc.stdout else ""
    assert "http://127.0.0.1:" in line, line
    return line.split("http://", 1)[1].split("/", 1)[0]


@pytest.mark.timeout(600)
def test_status_serve_and_dashboard_follow_a_sweep_in_the_bucket(tmp_path, s3):
    """The live views take the URI as launch does: status says running (the heartbeat decides, as
    in a bucket there is no lock), serve's page and the dashboard's study follow the sweep to its end."""
    uri = "s3://sweeps/team/views/live"
    driver, _, gate = start(tmp_path, "--results", "s3://sweeps/team/views", pause_at=8)
    views: list[subprocess.Popen[str]] = []
    try:
        wait_for(lambda: [k for k in keys(s3, "team/views/live/trials/") if k.endswith(".parquet")], "a part")
        status = cli("status", uri)
        assert status.returncode == 0 and "live: running" in status.stdout, status.stdout + status.stderr
        serve = subprocess.Popen(
            [sys.executable, "-m", "sweeper", "serve", uri, "--port", "0", "--every", "0.5"],
            stdout=subprocess.PIPE,
            text=True,
        )
        views.append(serve)
        page = f"http://{listening(serve)}"
        held = wait_for(lambda: get_json(f"{page}/state"), "the live page's state")
        assert held["state"] == "running" and 0 < held["runs"] < RUNS, held
        dash = None
        if __import__("importlib.util").util.find_spec("optuna_dashboard") is not None:
            port = socket.socket()
            port.bind(("127.0.0.1", 0))
            free = port.getsockname()[1]
            port.close()
            dash = subprocess.Popen(
                [sys.executable, "-m", "sweeper", "dashboard", uri, "--port", str(free), "--every", "0.5"],
                stdout=subprocess.PIPE,
                text=True,
            )
            views.append(dash)
            board = f"http://{listening(dash)}"
            wait_for(lambda: (get_json(f"{board}/api/studies") or {}).get("study_summaries"), "a study")
        gate.unlink()
        assert driver.wait(timeout=300) == 0, (tmp_path / "driver.err").read_text()
        done = wait_for(
            lambda: (s := get_json(f"{page}/state")) and s["state"] == "finished" and s, "the page to finish"
        )
        assert done["runs"] == RUNS
        import urllib.request

        with urllib.request.urlopen(page, timeout=10) as r:
            html = r.read().decode()
        assert "Report: live" in html and 'class="verdict yes"' in html
        if dash is not None:

            def six_trials() -> list:
                study = get_json(f"{board}/api/studies")["study_summaries"][0]["study_id"]
                trials = (get_json(f"{board}/api/studies/{study}") or {}).get("trials", [])
                return trials if len(trials) == 6 else []

            trials = wait_for(six_trials, "all 6 trials in the dashboard", 120)
            assert all(t["state"] == "Complete" for t in trials)
    finally:
        for view in views:
            view.terminate()
            view.wait(timeout=30)
            if view.stdout is not None:
                view.stdout.close()
        if driver.poll() is None:
            driver.kill()
            driver.wait()


def test_every_resume_hint_names_the_bucket_not_the_staging_copy(tmp_path, s3):
    """Ctrl-C, `sweeper status` and a storage fault each print a resume command; with --results on
    object storage it names the URI (the staging copy is gone once the driver ends), and following
    the storage fault's command literally finishes the sweep from the bucket, each run once."""
    import re
    import shlex

    import sweeper

    uri = "s3://sweeps/hints"
    driver, _, gate = start(tmp_path, "--results", uri, pause_at=4)
    wait_for(lambda: len(list((tmp_path / "log").iterdir())) >= 5, "the sweep held at its gate")
    driver.send_signal(signal.SIGINT)  # stop launching; the run in flight ends when the gate opens
    time.sleep(0.5)
    gate.unlink()
    assert driver.wait(timeout=120) != 0
    err = (tmp_path / "driver.err").read_text()
    resume = f"sweeper launch {tmp_path / 'live.yaml'} --results {uri} --backend local"
    assert f"resume with: {resume}" in err, err
    assert "sweeper-results-" not in err, err  # no staging path anywhere

    status = cli("status", f"{uri}/live")
    assert status.returncode == 0, status.stderr
    assert f"`{resume}` continues it" in status.stdout, status.stdout
    assert "sweeper-read-" not in status.stdout, status.stdout

    here = Path(__file__).parent
    sweep = tmp_path / "fault.yaml"
    sweep.write_text(
        "experiment: fault\nobjective: hostile_objectives:storage_fault\nmetrics: [{loss: minimize}]\n"
        "variables: {x: {float: [0, 1]}, y: {int: [0, 4]}, kind: {choice: [a, b]}}\n"
        "search: {method: random, trials: 30, seed: 0}\n"
    )
    env = {**os.environ, "FAULT": "full", "FAULT_AT": "12"}  # a file size limit on the driver: EFBIG
    env["PYTHONPATH"] = os.pathsep.join([str(here), env.get("PYTHONPATH", "")])
    argv = [sys.executable, "-m", "sweeper", "launch", str(sweep), "--results", uri, "--backend", "local"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=240)
    assert first.returncode == 2, first.stderr
    hint = re.search(r"then resume with: (.+)$", first.stderr, re.MULTILINE)
    assert hint, first.stderr
    assert shlex.split(hint.group(1)) == ["sweeper", *argv[3:]], first.stderr
    assert "(EFBIG)" in first.stderr and f"staging copy of {uri}/fault" in first.stderr, first.stderr
    env["FAULT_AT"] = "0"
    again = subprocess.run([sys.executable, "-m", *shlex.split(hint.group(1))], env=env, capture_output=True)
    assert again.returncode == 0, again.stderr.decode()
    table = sweeper.load(f"{uri}/fault")
    assert len(table) == 30 and table["trial"].nunique() == 30 and (table["status"] == "complete").all()


def test_a_uri_only_fsspec_opens_holds_a_sweep_and_its_resume(monkeypatch):
    """memory:// is no pyarrow.fs scheme: fsspec's file system, wrapped for pyarrow, holds the sweep,
    its reads and its resume (in this process: fsspec's memory file system lives as long as it)."""
    fsspec = pytest.importorskip("fsspec", reason="fsspec is a test extra (pip install -e '.[test]')")
    import sweeper
    from sweeper.errors import SweeperError
    from sweeper.results.status import experiment_status, format_status
    from sweeper.results.store import readable
    from tests.conftest import sweep_spec

    uri = "memory://sweeps/fs"
    spec = sweeper.load_spec(sweep_spec(), root=Path(__file__).parents[1])
    memory = fsspec.filesystem("memory")
    try:
        first = sweeper.launch(spec, results=uri, backend="local", progress=False)
        assert first.stats.runs_done == 12
        assert memory.isfile("/sweeps/fs/t/experiment.json")
        assert [p for p in memory.find("/sweeps/fs/t/trials") if p.endswith(".parquet")]
        table = sweeper.load(f"{uri}/t")
        assert len(table) == 12 and not table.duplicated(["trial", "replicate"]).any()
        with readable(f"{uri}/t") as folder:
            text = format_status(experiment_status(folder))
        assert text.startswith(f"t: finished  ({uri}/t)") and "runs: 12/12" in text, text
        again = sweeper.launch(spec, results=uri, backend="local", progress=False)
        assert again.stats.runs_done == 12 and again.stats.runs_before == 12  # resumed: nothing rerun
    finally:
        if memory.exists("/sweeps"):
            memory.rm("/sweeps", recursive=True)
    with pytest.raises(SweeperError, match=r"nosuch://x/y: neither pyarrow.fs nor fsspec can open") as err:
        sweeper.load("nosuch://x/y")
    assert "fix: install the fsspec package for this scheme" in str(err.value)
    monkeypatch.setitem(sys.modules, "fsspec", None)  # as where fsspec is not installed
    with pytest.raises(SweeperError, match=r"memory://x/y: pyarrow.fs cannot open memory:// URIs") as err:
        sweeper.load("memory://x/y")
    assert "fix: pip install fsspec" in str(err.value)


def copies(temp: Path) -> list[str]:
    """The local copies of a URI left in the temporary folder ``temp``."""
    return sorted(p.name for p in temp.iterdir() if p.name.startswith(("sweeper-read-", "sweeper-results-")))


@pytest.fixture
def temp(tmp_path, monkeypatch) -> Path:
    """This test's own temporary folder, for this process and its children: a copy another test or
    process leaves in the system's is not this one's."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.timeout(300)
def test_local_copies_of_a_uri_last_as_long_as_their_use(tmp_path, s3, temp):
    """launch's staging copy serves SweepResult until the process exits, then goes; load and the read
    commands (serve on SIGTERM included) leave no copy, nor does a read that fails."""
    import sweeper
    from sweeper.errors import SweeperError
    from tests.conftest import sweep_spec

    uri = "s3://sweeps/copies"
    child = (
        "import json, sys, sweeper\n"
        "spec = sweeper.load_spec(json.loads(sys.argv[1]), root=sys.argv[2])\n"
        "r = sweeper.launch(spec, results=sys.argv[3], backend='local', progress=False)\n"
        "assert r.path.is_dir() and len(r.table) == 12 and r.best is not None, r.path\n"
        "print(r.path)\n"
    )
    argv = [sys.executable, "-c", child, json.dumps(sweep_spec()), str(Path(__file__).parents[1]), uri]
    launched = subprocess.run(argv, capture_output=True, text=True, timeout=240)
    assert launched.returncode == 0, launched.stderr
    staging = Path(launched.stdout.strip().splitlines()[-1])
    assert staging.is_relative_to(temp) and not staging.exists()  # it served r.table, then went at exit
    assert copies(temp) == []

    assert len(sweeper.load(f"{uri}/t")) == 12
    with pytest.raises(SweeperError, match="no results there"):
        sweeper.load(f"{uri}/nothing")
    assert copies(temp) == []
    for command in ("status", "table", "report", "errors", "components"):
        done = cli(command, f"{uri}/t")
        assert done.returncode == 0, f"{command}: {done.stderr}"
        assert copies(temp) == [], command
    assert f"report: {uri}/t/report/index.html" in cli("report", f"{uri}/t").stdout
    assert cli("table", f"{uri}/nothing").returncode == 2 and copies(temp) == []

    argv = [sys.executable, "-m", "sweeper", "serve", f"{uri}/t", "--port", "0"]
    serve = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    try:
        listening(serve)
        assert [c.startswith("sweeper-read-") for c in copies(temp)] == [True]  # its copy, while it serves
    finally:
        serve.terminate()  # SIGTERM: `kill PID`
        assert serve.wait(timeout=30) == 0
        if serve.stdout is not None:
            serve.stdout.close()
    assert copies(temp) == []


@pytest.mark.timeout(300)
def test_a_staging_copy_whose_last_upload_failed_stays_with_every_run(tmp_path, moto, temp):
    """The bucket stops answering mid-sweep: the sweep ends, its last upload fails, and the error
    names the staging copy, which stays (not removed at exit) and holds every run."""
    import re

    import sweeper

    s3, server = moto
    driver, _, gate = start(tmp_path, "--results", "s3://sweeps/down", pause_at=8)
    wait_for(lambda: [k for k in keys(s3, "down/live/trials/") if k.endswith(".parquet")], "a part")
    server.terminate()
    server.wait(timeout=30)
    gate.unlink()
    assert driver.wait(timeout=240) == 2
    err = (tmp_path / "driver.err").read_text()
    assert "s3://sweeps/down/live: the last upload failed" in err, err
    kept = re.search(r"every recorded run is kept in (\S+) \(the local staging copy", err)
    assert kept, err
    staging = Path(kept.group(1))
    assert staging.is_relative_to(temp) and copies(temp) == [staging.parent.name]
    table = sweeper.load(staging)
    assert len(table) == RUNS and not table.duplicated(["trial", "replicate"]).any()
    assert (table["status"] == "complete").all()
