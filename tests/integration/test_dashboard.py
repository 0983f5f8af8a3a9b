"""`sweeper dashboard`: a real optuna-dashboard on the study rebuilt from the table, read through its
HTTP API while the sweep runs and after it ends."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request

import pytest

from tests.integration.live_sweep import start, wait_for

pytest.importorskip("optuna_dashboard", reason="needs optuna-dashboard (pip install -e '.[dashboard]')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def trials(base: str) -> list[dict]:
    studies = get(f"{base}/api/studies")
    if not studies or not studies["study_summaries"]:
        return []
    study_id = studies["study_summaries"][0]["study_id"]
    detail = get(f"{base}/api/studies/{study_id}")
    return detail["trials"] if detail else []


@pytest.mark.timeout(600)
def test_dashboard_shows_the_study_and_follows_the_sweep(tmp_path):
    driver, folder, gate = start(tmp_path, pause_at=12)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dash = None
    try:
        wait_for(lambda: (folder / "trials").is_dir() and any((folder / "trials").iterdir()), "first rows")
        dash = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sweeper",
                "dashboard",
                str(folder),
                "--port",
                str(port),
                "--every",
                "0.5",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert "optuna-dashboard at http://127.0.0.1:" in (dash.stdout.readline() if dash.stdout else "")
        early = wait_for(lambda: trials(base), "the dashboard to list the first finished trials", 300)
        assert 0 < len(early) < 6  # the sweep is held after 12 of its 24 runs
        gate.unlink()
        done = wait_for(
            lambda: (t := trials(base)) and len(t) == 6 and t, "all 6 trials in the dashboard", 200
        )
        assert driver.wait(timeout=120) == 0
    finally:
        if dash is not None:
            dash.terminate()
            dash.communicate(timeout=30)
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    # `kill PID` of sweeper dashboard ends the optuna-dashboard it started (and its forked server)
    wait_for(lambda: get(f"{base}/api/studies") is None, "optuna-dashboard to stop with its parent")
    import sweeper

    table = sweeper.load(folder)
    for t in done:
        attrs = {a["key"]: a["value"] for a in t["user_attrs"]}
        k = int(attrs["sweeper_trial"])
        rows = table[table["trial"] == k].sort_values("replicate")
        assert t["state"] == "Complete"
        assert attrs["replicates"] == "4"  # the dashboard's API serves attributes as text
        assert [float(v) for v in json.loads(attrs["loss_per_replicate"])] == pytest.approx(
            list(rows["loss"])
        )
        steps = {int(iv["step"]): float(iv["value"]) for iv in t["intermediate_values"]}
        assert steps == pytest.approx(dict(zip(rows["replicate"], rows["loss"], strict=True)))
        assert float(t["values"][0]) == pytest.approx(rows["loss"].mean())
        params = {p["name"]: p["param_external_value"] for p in t["params"]}
        assert params["y"] == rows["y"].iloc[0] and float(params["x"]) == rows["x"].iloc[0]


def test_dashboard_refuses_a_folder_that_holds_no_results(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "dashboard", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 2 and "not a results folder" in out.stderr


def test_dashboard_on_a_taken_port_says_so_at_once(tmp_path):
    import sweeper
    from tests.conftest import REPO, sweep_spec

    spec = sweeper.load_spec(sweep_spec(), root=REPO / "tests")
    folder = sweeper.launch(spec, results=tmp_path, backend="local")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "sweeper", "dashboard", str(folder.path), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port} (")
    assert "fix: pick another --port" in out.stderr and "optuna-dashboard at" not in out.stdout
