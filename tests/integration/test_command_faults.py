"""Hostile command objectives: shell injection through the template, and programs that leave
children behind. Each is refused or cleaned up at its cause, and the sweep goes on."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import sweeper
from sweeper.errors import SweeperError

PY = sys.executable

# One of every payload family that a shell treats as code, each trying to create PWNED.
PAYLOADS = [
    "; touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "x\ntouch PWNED",
    "'; touch PWNED; '",
    '"; touch PWNED; "',
    "&& touch PWNED",
    "| touch PWNED",
    "> PWNED",
    "${IFS}touch${IFS}PWNED",
    "$IFS; touch PWNED #",
    "\\'; touch PWNED",
]


def _spec(tmp_path: Path, command: Any, variables: dict[str, Any], **extra: Any) -> sweeper.Experiment:
    data = {
        "experiment": "cmd",
        "command": command,
        "metrics": [{"loss": "minimize"}],
        "variables": variables,
        "search": {"method": "grid"},
        **extra,
    }
    return sweeper.load_spec(data, root=tmp_path)


def test_bare_placeholders_in_a_shell_line_pass_every_payload_verbatim(tmp_path: Path) -> None:
    line = """printf '%s' {v} > "$SWEEPER_TRIAL_DIR/arg" && echo '{{"loss": 1}}'"""
    spec = _spec(tmp_path, line, {"v": {"choice": PAYLOADS}}, shell=True)
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    table = run.table
    assert (table.status == "complete").all(), table.error.tolist()
    for row in table.to_dict("records"):
        got = (run.path / "artifacts" / f"trial-{row['trial']}" / "rep-0" / "arg").read_text()
        assert got == row["v"]
    assert not list(tmp_path.rglob("PWNED*"))


@pytest.mark.parametrize(
    "placeholder",
    ["'{v}'", '"{v}"', "--v='{v}'", '"--v={v}"', "`echo {v}`", "\\{v}", "$'{v}'", '"$(echo {v})"'],
)
def test_quoted_placeholders_are_refused_before_any_run(tmp_path: Path, placeholder: str) -> None:
    line = f"echo {placeholder}; echo '{{{{\"loss\": 1}}}}'"
    spec = _spec(tmp_path, line, {"v": "$(touch PWNED)"}, shell=True)
    with pytest.raises(SweeperError) as info:
        sweeper.launch(spec, results=tmp_path / "r", backend="local")
    text = str(info.value)
    assert "placeholder {v} is" in text and "fix: write {v} bare" in text, text
    assert not list(tmp_path.rglob("PWNED*")) and not (tmp_path / "r" / "cmd" / "trials").exists()


def test_a_here_document_placeholder_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "cat <<EOF\n{v}\nEOF", {"v": "$(touch PWNED)"}, shell=True)
    with pytest.raises(SweeperError, match="here-document"):
        sweeper.launch(spec, results=tmp_path / "r", backend="local")


LEAVER = textwrap.dedent("""
    import os, subprocess, sys, time
    mode, out = sys.argv[1], os.environ["SWEEPER_TRIAL_DIR"]
    if mode == "background":  # a child that inherits stdout and keeps it open
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        pid = child.pid
    else:  # a double-forked daemon in a session of its own (stdout closed when "quiet")
        r, w = os.pipe()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                if mode == "quiet":
                    devnull = os.open(os.devnull, os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(devnull, fd)
                os.write(w, str(os.getpid()).encode())
                os.close(w)
                time.sleep(120)
            os._exit(0)
        os.close(w)
        pid = int(os.read(r, 32))
    with open(os.path.join(out, "child"), "w") as fh:
        fh.write(str(pid))
    print('{"loss": 1.0}', flush=True)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds left-behind processes in /proc")
@pytest.mark.timeout(120)
def test_a_run_ends_when_its_program_exits_and_takes_its_children(tmp_path: Path) -> None:
    (tmp_path / "leaver.py").write_text(LEAVER)
    # With a timeout, a run that waited for the child's stdout would be recorded as `timeout`.
    spec = _spec(
        tmp_path,
        [PY, "leaver.py", "{mode}"],
        {"mode": {"choice": ["background", "daemon", "quiet"]}},
        timeout="20s",
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    table = run.table
    assert table.status.tolist() == ["complete"] * 3, table.error.tolist()
    for trial in range(3):
        pid = int((run.path / "artifacts" / f"trial-{trial}" / "rep-0" / "child").read_text())
        assert not _alive(pid), f"trial {trial}: child {pid} outlived its run"
