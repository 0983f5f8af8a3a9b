"""The ``sweeper`` command's exit (sweeper.cli.run): without the interpreter's teardown, yet nothing
it printed is lost, its exit code and the atexit handlers stay, and a thread still at work is joined."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.unit.test_report_golden import plain_case

REPO = Path(__file__).resolve().parents[2]


def _sweeper(*args: str, before: str = "") -> subprocess.CompletedProcess[str]:
    argv = ["sweeper", *args]
    code = f"import sys\n{before}\nsys.argv = {argv!r}\nfrom sweeper.cli import run\nrun()\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # buffered, as a pipe is
    command = [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env, timeout=120)


def test_a_piped_table_arrives_whole_and_the_exit_handlers_run(tmp_path: Path) -> None:
    folder = plain_case(tmp_path / "plain")
    out = _sweeper(
        "table", str(folder), "--format", "csv", before="import atexit; atexit.register(print, 'atexit ran')"
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "atexit ran"
    assert lines[0].startswith("rank,trial,")
    assert len(lines) == 1 + 80 + 1  # the header, one row per trial, the handler's line


def test_an_error_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    out = _sweeper("status", str(tmp_path / "nowhere"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "nowhere" in out.stderr


def test_a_thread_still_running_is_joined_by_the_normal_exit(tmp_path: Path) -> None:
    late = "threading.Thread(target=lambda: (time.sleep(1), print('joined'))).start()"
    started = f"import threading, time\n{late}"
    out = _sweeper("status", str(tmp_path / "nowhere"), before=started)
    assert out.returncode == 2
    assert out.stdout.strip() == "joined"
