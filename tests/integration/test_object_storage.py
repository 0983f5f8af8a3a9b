"""--results s3://... against a real S3 API (moto's server mode on 127.0.0.1): parts stream to the
bucket while the sweep runs, a SIGKILLed driver resumes from the bucket with nothing lost, and the read
commands work on the URI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.live_sweep import RUNS, start, wait_for

boto3 = pytest.importorskip("boto3", reason="needs boto3 and moto[server] (pip install -e '.[test]')")


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto S3 server on 127.0.0.1 with a bucket; the AWS variables point pyarrow and boto3 at it."""
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
    yield client
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
    time.sleep(16)  # FRESH_S: a dead driver's heartbeat goes stale
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
