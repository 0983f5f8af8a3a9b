"""Damaged or foreign results folders: every command says what is wrong and the fix (exit 2), and
launch, status, table and report agree on what they accept."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

import sweeper
from sweeper.cli import main
from tests.conftest import sweep_spec

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("done")
    spec = sweeper.load_spec(sweep_spec(experiment="done", replicates=1), root=TESTS)
    return sweeper.launch(spec, results=root, backend="local").path


def _copy(folder: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(folder, tmp_path / folder.name))


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_results_that_is_a_file_is_refused_with_a_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump(sweep_spec(objective="objectives:quadratic")))
    (tmp_path / "taken").write_text("a file")
    code, text = _run(
        capsys, "launch", str(sweep), "--results", str(tmp_path / "taken"), "--backend", "local"
    )
    assert code == 2 and "is a file, not a folder" in text and "fix:" in text and "Traceback" not in text


@pytest.mark.parametrize("record", [[1, 2], "text", {"name": "done"}, {"spec": 3}])
@pytest.mark.parametrize("command", ["status", "table", "report"])
def test_an_experiment_json_of_another_shape_is_named(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], record: object, command: str
) -> None:
    folder = _copy(finished, tmp_path)
    (folder / "experiment.json").write_text(json.dumps(record))
    code, text = _run(capsys, command, str(folder))
    assert code == 2 and "not an experiment record" in text and "--fresh" in text, text


def _foreign(folder: Path, table: pa.Table) -> Path:
    path = folder / "trials" / "part-000900.parquet"
    pq.write_table(table, path)
    return path


def test_a_part_with_a_clashing_column_type_is_named_by_every_reader(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(finished, tmp_path)
    rows = pq.read_table(next((folder / "trials").glob("*.parquet"))).slice(0, 1)
    clash = rows.set_column(rows.schema.get_field_index("x"), "x", pa.array(["text"]))
    bad = _foreign(folder, clash)
    with pytest.raises(sweeper.SweeperError, match="column 'x' is string here but double"):
        sweeper.load(folder)
    for command in ("table", "report"):
        code, text = _run(capsys, command, str(folder))
        assert code == 2 and str(bad) in text and "Traceback" not in text, text
    code, text = _run(capsys, "status", str(folder))
    assert code == 0 and "damaged" in text and str(bad) in text


def test_a_foreign_part_is_refused_alike_by_launch_status_and_report(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(finished, tmp_path)
    bad = _foreign(folder, pa.table({"a": [1, 2], "b": ["x", "y"]}))
    code, text = _run(capsys, "status", str(folder))
    assert "not a part of a sweeper trial table" in text and str(bad) in text
    code, text = _run(capsys, "report", str(folder))
    assert code == 2 and "not a part of a sweeper trial table" in text
    spec = sweeper.load_spec(sweep_spec(experiment="done", replicates=1), root=TESTS)
    with pytest.raises(sweeper.SweeperError, match="not a part of a sweeper trial table"):
        sweeper.launch(spec, results=folder.parent, backend="local")


def test_report_calls_a_crashed_sweep_crashed_as_status_does(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(finished, tmp_path)
    record = json.loads((folder / "experiment.json").read_text())
    (folder / "experiment.json").write_text(json.dumps({**record, "status": "running"}))  # no driver holds it
    code, text = _run(capsys, "status", str(folder))
    assert code == 0 and "done: crashed" in text
    sweeper.write_report(folder)
    assert "**crashed**" in (folder / "report" / "report.md").read_text()


KILLED_REPORT = textwrap.dedent("""
    import os, signal, sys
    from matplotlib.figure import Figure
    import sweeper

    real = Figure.savefig
    count = []

    def savefig(self, fname, *args, **kwargs):
        count.append(1)
        if len(count) == 2:  # killed while the second figure is being written
            with open(fname, "wb") as fh:
                fh.write(b"\\x89PNG")
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, fname, *args, **kwargs)

    Figure.savefig = savefig
    sweeper.write_report(sys.argv[1])
""")


def test_a_kill_during_report_leaves_no_partial_figure(finished: Path, tmp_path: Path) -> None:
    folder = _copy(finished, tmp_path)
    proc = subprocess.run([sys.executable, "-c", KILLED_REPORT, str(folder)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    pngs = list((folder / "report").glob("*.png"))
    assert len(pngs) == 1  # the first figure, whole; the second never appears half-written
    assert pngs[0].stat().st_size > 1000
