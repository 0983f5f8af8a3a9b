"""MLflow tracking against real stores: a `sqlite:///` URI and a real `mlflow server` on 127.0.0.1 that
is killed mid-sweep; everything is read back with MlflowClient."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.live_sweep import RUNS, start, wait_for

pytest.importorskip("mlflow", reason="needs mlflow (pip install -e '.[mlflow]')")


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def runs_of(uri: str, name: str = "live") -> list:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    return [] if exp is None else c.search_runs([exp.experiment_id], max_results=1000)


def children(runs: list) -> list:
    return [r for r in runs if "sweeper.replicate" in r.data.tags]


def sweeper(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeper", *args], capture_output=True, text=True, cwd=cwd)


def check_complete(uri: str, folder: Path) -> None:
    """Every replicate once, under its trial's parent run, with what the table and history hold."""
    import sweeper as sw

    table, history = sw.load(folder), sw.load_history(folder)
    runs = runs_of(uri)
    kids = children(runs)
    parents = {r.info.run_id: r for r in runs if r.data.tags.get("sweeper.kind") == "trial"}
    keys = sorted((int(r.data.tags["sweeper.trial"]), int(r.data.tags["sweeper.replicate"])) for r in kids)
    assert keys == sorted(zip(table["trial"], table["replicate"], strict=True))  # each once, none lost
    assert len(parents) == table["trial"].nunique()
    c = client(uri)
    for run in kids:
        t = run.data.tags
        k, r = int(t["sweeper.trial"]), int(t["sweeper.replicate"])
        row = table[(table["trial"] == k) & (table["replicate"] == r)].iloc[0]
        parent = parents[t["mlflow.parentRunId"]]
        assert parent.data.tags["sweeper.trial"] == str(k)
        assert run.data.params == {"x": str(row["x"]), "y": row["y"], "seed": str(row["seed"])}
        assert t["sweeper.status"] == "complete" and run.info.status == "FINISHED"
        assert t["sweeper.hypothesis"] == "y=a has a lower loss than y=b"
        assert run.data.metrics["loss"] == pytest.approx(row["loss"])  # the final value is the latest
        steps = [(m.step, m.value) for m in c.get_metric_history(run.info.run_id, "loss")]
        curve = history[(history["trial"] == k) & (history["replicate"] == r)]
        assert steps[:-1] == [
            (int(s), pytest.approx(v)) for s, v in zip(curve["step"], curve["loss"], strict=True)
        ]
    for parent in parents.values():
        k = int(parent.data.tags["sweeper.trial"])
        assert parent.data.metrics["loss"] == pytest.approx(table[table["trial"] == k]["loss"].mean())
        assert parent.data.tags["sweeper.status"] == "complete"


def test_sqlite_store_gets_every_run_and_the_verdict(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    driver, folder, _ = start(tmp_path, "--mlflow", uri, pause_at=10**6)
    assert driver.wait(timeout=240) == 0, (tmp_path / "driver.err").read_text()
    check_complete(uri, folder)

    rep = sweeper("report", str(folder), cwd=tmp_path)  # the launch recorded where to log
    assert rep.returncode == 0, rep.stderr
    assert "mlflow: verdict logged to run" in rep.stdout
    verdict = [r for r in runs_of(uri) if r.data.tags.get("sweeper.kind") == "experiment"]
    assert len(verdict) == 1 and verdict[0].data.tags["verdict.supported"] == "True"
    path = client(uri).download_artifacts(verdict[0].info.run_id, "verdict.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["supported"] is True

    again = sweeper("export", str(folder), "--mlflow", uri, cwd=tmp_path)  # nothing new: nothing doubled
    assert again.returncode == 0 and "mlflow: 0 runs logged (24 in all)" in again.stdout, again.stderr
    assert len(children(runs_of(uri))) == RUNS


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mlflow_server(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("mlflow")
    log = open(tmp / "mlflow-server.log", "ab")  # noqa: SIM115 (closed once the server has its copy)
    proc = subprocess.Popen(
        [
            str(exe),
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp / 'server.db'}",
            "--artifacts-destination",
            str(tmp / "mlartifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its workers share its process group: stopped by that id
    )
    log.close()

    def up() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            assert proc.poll() is None, (tmp / "mlflow-server.log").read_text()[-3000:]
            return False

    wait_for(up, "mlflow server to answer", 240)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# A dead server must cost the driver (and this test) one quick failure per call, not MLflow's
# default of 7 retries with a doubling backoff; the loaded server still gets a generous timeout.
FAIL_FAST = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


@pytest.mark.timeout(600)
def test_server_killed_mid_sweep_costs_a_warning_and_is_caught_up(tmp_path, monkeypatch):
    """12 runs (6 trials x 2 replicates), held after 6: the server dies while the sweep is held, the
    sweep ends anyway with a warning that names the fix, and `sweeper export` catches MLflow up
    once the server is back on the same store."""
    import sweeper as sw

    for k, v in FAIL_FAST.items():
        monkeypatch.setenv(k, v)
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = mlflow_server(tmp_path, port)
    driver = None
    try:
        driver, folder, gate = start(tmp_path, "--mlflow", uri, pause_at=6, replicates=2)
        wait_for(lambda: children(runs_of(uri)), "the first runs in MLflow", 240)
        stop(server)  # the tracking server dies mid-sweep (the sweep is held: 6 runs are still to come)
        gate.unlink()
        assert driver.wait(timeout=300) == 0  # the sweep ends as if nothing happened ...
        err = (tmp_path / "driver.err").read_text()
        assert f"warning: MLflow at {uri} failed" in err, err  # ... but a warning says so
        assert f"sweeper export {folder} --mlflow {uri}" in err
        assert len(sw.load(folder)) == 12
        # while it is down: the commands say so in a line with its fix, not in MLflow's traceback
        down = sweeper("export", str(folder), "--mlflow", uri, cwd=tmp_path)
        assert down.returncode == 2 and down.stderr.startswith(f"error: MLflow at {uri} failed: ")
        assert "fix: start the tracking server" in down.stderr and "Traceback" not in down.stderr
        rep = sweeper("report", str(folder), cwd=tmp_path)  # the launch's MLflow: the report still counts
        assert rep.returncode == 0 and "report: " in rep.stdout and "Traceback" not in rep.stderr
        assert f"warning: the report is written, but MLflow at {uri} failed" in rep.stderr
        server = mlflow_server(tmp_path, port)  # back, on the same store
        assert len(children(runs_of(uri))) < 12
        out = sweeper("export", str(folder), "--mlflow", uri, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        check_complete(uri, folder)
    finally:
        stop(server)
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
