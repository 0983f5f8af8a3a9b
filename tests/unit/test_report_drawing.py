"""The report's figures drawn by a second process (sweeper/report/drawing.py, issue 13 item 5): the same
files as drawn in process, and whatever goes wrong there is raised in the report's own process; each
test runs with the child as a fork of the test's process and as a new Python."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sweeper.analysis.importance import Importance
from sweeper.errors import SweeperError
from sweeper.report import drawing, forks
from sweeper.report.build import write_report
from tests.unit.test_figures import wide_case
from tests.unit.test_report_golden import plain_case

TEXTS = ("report.md", "summary.csv", "verdict.json", "importance.json")


@pytest.fixture(params=["fork", "new python"])
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the child starts; whatever the machine's load, a child is started."""
    monkeypatch.setattr(drawing, "_spare_core", lambda: True)
    monkeypatch.setattr(forks, "forkable", lambda: request.param == "fork")
    return str(request.param)


def _only_there(real: Callable[..., Any]) -> Callable[..., Any]:
    """``real`` in the child (a fork inherits the patch, a new Python imports its own), a failure here."""
    here = os.getpid()

    def there(*args: Any) -> Any:
        if os.getpid() == here:
            raise AssertionError("the table's figures were drawn in the report's own process")
        return real(*args)

    return there


def _report(folder: Path) -> dict[str, bytes]:
    rep = write_report(folder)
    shown = {name: (rep.folder / name).read_bytes() for name in rep.figures}
    return shown | {name: (rep.folder / name).read_bytes() for name in TEXTS}


def test_a_second_process_draws_the_same_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    folder = plain_case(tmp_path / "plain")
    here = _report(folder)  # 80 trials, under PARALLEL_TRIALS: the child is ended, drawn in process
    assert {"arms.png", "variables.png", "history.png", "importance.png"} <= set(here)
    monkeypatch.setattr(drawing, "PARALLEL_TRIALS", 1)
    monkeypatch.setattr(drawing, "table_figures", _only_there(drawing.table_figures))
    there = _report(folder)
    assert list(there) == list(here)  # the same figures in the same page order, and the same texts
    for name, data in here.items():
        assert there[name] == data, name


def test_a_second_process_draws_a_wide_sweeps_figures_as_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    """A wide sweep's table figures wait for the importance (it picks their variables): in the second
    process too, with the same files in the same page order."""
    folder = wide_case(tmp_path / "wide")

    def figures() -> dict[str, bytes]:
        rep = write_report(folder)
        return {name: (rep.folder / name).read_bytes() for name in rep.figures}

    here = figures()
    monkeypatch.setattr(drawing, "PARALLEL_TRIALS", 1)
    monkeypatch.setattr(drawing, "table_figures", _only_there(drawing.table_figures))
    there = figures()
    assert list(there) == list(here) and {"variables.png", "parallel.png"} <= set(here)
    for name, data in here.items():
        assert there[name] == data, name


def test_a_figure_failing_in_the_second_process_fails_the_report_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    folder = plain_case(tmp_path / "plain")
    monkeypatch.setattr(drawing, "PARALLEL_TRIALS", 1)
    broken = Importance({"lr": "not a share"}, 80, ())  # type: ignore[dict-item]
    monkeypatch.setattr("sweeper.analysis.importance.importance", lambda df, spec: broken)
    with pytest.raises(Exception) as caught:
        write_report(folder)
    notes = "\n".join(getattr(caught.value, "__notes__", []))
    assert "raised in the process drawing the report's figures" in notes
    assert "importance_bars" in notes  # the child's own traceback comes with it


def test_a_second_process_that_dies_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    folder = plain_case(tmp_path / "plain")
    monkeypatch.setattr(drawing, "PARALLEL_TRIALS", 1)
    if start == "fork":
        monkeypatch.setattr(drawing, "_serve", lambda inp, reply: os._exit(1))  # reads nothing, exits 1
    else:
        monkeypatch.setattr(sys, "executable", "/bin/false")  # starts, reads nothing, exits 1
    with pytest.raises(SweeperError, match=r"drawing the report's figures ended \(exit code 1\)"):
        write_report(folder)
