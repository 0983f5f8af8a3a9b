"""A newcomer's first hour (issue 12): failures on screen, shareable files, true numbers, reruns."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import sweeper
from sweeper.spec.model import load_spec

HERE = Path(__file__).parent


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_every_results_file_is_readable_by_others_under_umask_022(tmp_path: Path, umask_022: None) -> None:
    data = {
        "experiment": "shared",
        "objective": "objectives:quadratic",
        "metrics": [{"loss": "minimize"}, {"x_abs": "minimize"}],
        "variables": {"x": {"float": [-2.0, 2.0]}, "y": {"int": [0, 4]}, "kind": {"choice": ["a", "b"]}},
        "search": {"method": "random", "trials": 6, "seed": 0},
        "replicates": 2,
        "compare": {"variable": "kind", "treatment": "b", "baseline": "a"},
    }
    sweep = sweeper.launch(load_spec(data, root=HERE.parent), results=tmp_path, backend="local")
    sweeper.write_report(sweep.path)
    files = [p for p in sweep.path.rglob("*") if p.is_file()]
    assert {"experiment.json", "index.html", "report.md"} <= {p.name for p in files}
    assert any(p.suffix == ".parquet" for p in files)
    private = [
        f"{p.relative_to(sweep.path)} {stat.filemode(p.stat().st_mode)}"
        for p in files
        if p.stat().st_mode & 0o044 != 0o044
    ]
    assert not private


OBJECTIVES = """
import numpy as np


def typo(lr, width, seed):
    rng = np.random.default_rng(seed)
    return float(nmpy.mean(rng.normal(lr, 1.0, width)))


def each_differs(lr, width, seed):
    raise ValueError(f"width {width} is wrong")


def some_fail(lr, width, seed):
    if width % 2:
        raise RuntimeError("odd widths are not supported")
    return float(np.random.default_rng(seed).normal(lr, 1.0))


def extras(lr, width, seed):
    return {"loss": lr, "n_params": width * 10, "note": "text"}


def diverges(lr, width, seed):
    return {"loss": float("nan") if width > 40 else lr, "acc": float("inf")}


def misreports(lr, width, seed, trial):
    for step in range(3):
        trial.report(step, los=lr / (step + 1))  # a typo of the primary metric's name
    return lr


def blocked(lr, width, opt, data, seed):
    return lr + (0.0 if data == "x" else 10.0)


def optimizers(lr, width, opt, seed):
    return float(np.random.default_rng(seed).normal(lr if opt == "b" else 1.0, 0.01))
"""


def write_sweep(
    folder: Path, objective: str, *, name: str = "first", trials: int = 25, more: tuple[str, str] = ("", "")
) -> Path:
    """``more`` is (YAML lines added under ``variables:``, YAML lines added at the top level)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "newcomer_objectives.py").write_text(OBJECTIVES)
    path = folder / f"{name}.yaml"
    path.write_text(
        f"experiment: {name}\nobjective: newcomer_objectives:{objective}\nmetrics: [{{loss: minimize}}]\n"
        f"variables:\n  lr: {{float: [0.001, 0.1], log: true}}\n  width: {{int: [8, 64]}}\n{more[0]}"
        f"search: {{method: random, trials: {trials}, seed: 0}}\nreplicates: 3\n{more[1]}"
    )
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sweeper", *args], cwd=cwd, capture_output=True, text=True, timeout=240
    )


def test_a_bug_is_shown_at_once_and_stops_the_sweep_early(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "exp", "typo")
    out = cli("launch", str(sweep), "--backend", "local", cwd=tmp_path / "exp")
    folder = tmp_path / "exp" / "results" / "first"
    assert out.returncode == 2, out.stderr
    err = out.stderr
    assert err.startswith(f"results: {folder} (new experiment)\n")
    # the first failure, once, with the end of its traceback, right under the progress line
    assert err.count("run failed (trial 0, replicate 0); the end of its error:") == 1
    shown = err.split("the end of its error:\n", 1)[1]
    assert "  | NameError: name 'nmpy' is not defined" in shown.splitlines()[:6]
    assert 'newcomer_objectives.py", line 7, in typo' in shown
    assert f"`sweeper errors {folder}` prints every traceback" in shown
    # five runs of two trials failed alike: stopped, not 75 runs spent on a typo
    assert "error: first: the first 5 runs (of 2 trials) all failed with the same error" in err
    assert "\n\nerror:" not in err and f"fix: `sweeper errors {folder}`" in err
    assert len(sweeper.load(folder)) == 5

    status = cli("status", str(folder), cwd=tmp_path)
    assert "    5 runs: NameError: name 'nmpy' is not defined" in status.stdout, status.stdout
    assert f"--results {folder.parent}" in status.stdout  # an absolute hint, good from any folder
    errors = cli("errors", str(folder), cwd=tmp_path)
    assert errors.returncode == 0
    assert "== 5 runs: NameError: name 'nmpy' is not defined" in errors.stdout
    assert "trial/replicate: 0/0, 0/1, 0/2, 1/0, 1/1" in errors.stdout
    assert "return float(nmpy.mean(" in errors.stdout
    one = cli("errors", str(folder), "--trial", "1", cwd=tmp_path)
    assert one.stdout.count("Traceback (most recent call last):") == 2, one.stdout
    assert "== trial 1 replicate 1 (failed, attempt 1" in one.stdout


def test_no_completed_run_exits_1_and_names_the_error_once(tmp_path: Path) -> None:
    """Each run's message holds its width: one error all the same, raised at one line."""
    sweep = write_sweep(tmp_path, "each_differs", trials=3)
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "first: 3 trials, 9 runs (9 failed)" in out.stdout
    assert "failed runs by error (9 in all;" in out.stdout
    line = OBJECTIVES.splitlines().index('    raise ValueError(f"width {width} is wrong")') + 1
    (group,) = [text for text in out.stdout.splitlines() if text.startswith("  9 runs: ValueError: width ")]
    assert group.endswith(f" is wrong (and 2 other messages raised at newcomer_objectives.py:{line})"), group
    assert "no run completed: every one of the 9 runs failed (exit code 1)" in out.stderr
    errors = cli("errors", str(tmp_path / "results" / "first"), cwd=tmp_path)
    assert errors.stdout.count("\n== ") + errors.stdout.startswith("== ") == 1, errors.stdout
    assert errors.stdout.startswith(group.replace("  9 runs:", "== 9 runs:") + "\n")


def test_some_failed_runs_exit_0_with_the_failures_listed(tmp_path: Path) -> None:
    here = tmp_path / "my exp"  # a space: the hints must still paste as one argument
    sweep = write_sweep(here, "some_fail", trials=12)
    out = cli("launch", str(sweep), "--backend", "local", cwd=here)
    assert out.returncode == 0, out.stderr
    df = sweeper.load(here / "results" / "first")
    n = int((df["status"] == "failed").sum())
    assert 0 < n < len(df)
    assert f"  {n} runs: RuntimeError: odd widths are not supported" in out.stdout
    hint = out.stdout.split("; `", 1)[1].split("` prints the tracebacks", 1)[0]
    assert hint == f"sweeper errors {shlex.quote(str(here / 'results' / 'first'))}"
    errors = cli(*shlex.split(hint)[1:], cwd=tmp_path)
    assert errors.returncode == 0 and f"== {n} runs: RuntimeError: odd widths" in errors.stdout
    # runs/s is one number, defined once: the progress line's last value is the summary's
    progress = [line for line in out.stderr.splitlines() if line.startswith("trials 12/12")][-1]
    rate = progress.split(" runs/s")[0].rsplit("| ", 1)[1]
    assert f"this launch: {len(df)} runs in " in out.stdout and f", {rate} runs/s" in out.stdout
    took = out.stdout.split(f"this launch: {len(df)} runs in ", 1)[1].split(",", 1)[0]
    assert took.endswith("s") and 0 < float(took[:-1]) < 10 and "." in took  # a short launch is not "in 0s"


def test_a_declared_metric_no_run_reports_is_named_in_the_summary(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "some_fail", trials=4)  # returns a float: the primary metric alone
    text = sweep.read_text().replace("[{loss: minimize}]", "[{loss: minimize}, {acc: maximize}]")
    sweep.write_text(text)
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    warning = "warning: no run reported 'acc', declared in metrics:; return it in the objective's dict"
    assert warning in out.stdout
    assert "'loss'" not in out.stdout.split("warning: ", 1)[1].splitlines()[0]  # loss was reported
    sweep.write_text(text.replace(", {acc: maximize}", ""))
    again = cli("launch", str(sweep), "--backend", "local", "-q", "--fresh", cwd=tmp_path)
    assert again.returncode == 0 and "no run reported" not in again.stdout


def test_returned_keys_no_metric_declares_are_named_not_silently_dropped(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "extras", trials=3)
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (
        "warning: runs also returned 'n_params', 'note', not declared in metrics:, so not recorded; "
        "add them to metrics: (e.g. - n_params: maximize) to keep them"
    ) in out.stdout
    assert "n_params" not in sweeper.load(tmp_path / "results" / "first").columns
    declared = "[{loss: minimize}, {n_params: minimize}]"
    sweep.write_text(sweep.read_text().replace("[{loss: minimize}]", declared))
    again = cli("launch", str(sweep), "--backend", "local", "-q", "--fresh", cwd=tmp_path)
    assert "warning: runs also returned 'note', not declared in metrics:" in again.stdout, again.stdout
    assert "add it to metrics: (e.g. - note: maximize) to keep it" in again.stdout


def test_nan_and_inf_metrics_are_counted_in_the_summary(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "diverges", trials=12)
    sweep.write_text(sweep.read_text().replace("[{loss: minimize}]", "[{loss: minimize}, {acc: maximize}]"))
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    df = sweeper.load(tmp_path / "results" / "first")
    nan = int(df["loss"].isna().sum())
    assert 0 < nan < len(df)
    assert (
        f"warning: runs returned nan or inf: loss in {nan} runs, acc in {len(df)} runs; their trials have "
        "no mean loss, rank last and count as failed for the search"
    ) in out.stdout
    assert "no run reported" not in out.stdout  # acc was reported, as inf


def test_components_of_a_sweep_without_any_says_how_to_have_them(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "some_fail", trials=2)
    assert cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path).returncode == 0
    out = cli("components", str(tmp_path / "results" / "first"), cwd=tmp_path)
    assert out.returncode == 0
    assert out.stdout.startswith("no components: this sweep declared none and its runs logged none\n")
    assert "components: in the sweep file" in out.stdout and "trial.log_component" in out.stdout


def test_a_launch_result_goes_where_its_folder_goes(tmp_path: Path) -> None:
    more = ("  opt: {choice: [a, b]}\n", "compare: {variable: opt, treatment: b, baseline: a}\n")
    sweep = write_sweep(tmp_path, "optimizers", trials=6, more=more)
    result = sweeper.launch(str(sweep), results=tmp_path / "r", backend="local", progress=False)
    assert os.fspath(result) == str(result.path) and Path(result) == result.path
    assert str(sweeper.verdict(result)) == str(sweeper.verdict(result.path))
    assert sweeper.summary(result).equals(sweeper.summary(result.path))
    assert sweeper.load(result).equals(result.table)
    assert sweeper.write_report(result).markdown == result.path / "report" / "report.md"


def test_a_dry_run_checks_everything_and_says_what_the_launch_would_run(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "some_fail", trials=4)
    folder = tmp_path / "results" / "first"
    dry = cli("launch", str(sweep), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert lines[0] == f"dry run: {sweep} is valid and its objective imports; nothing was run or written"
    assert "  search: random, 4 trials, seed 0; 3 replicates per trial = 12 runs (1 CPU each)" in lines
    assert f"  results: {folder} (a new experiment)" in lines
    assert not (tmp_path / "results").exists()  # nothing written
    previewed = lines[lines.index("  first trials:") + 1 :]
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    table = sweeper.load(folder)
    seeds = ", ".join(str(s) for s in sorted(set(table["seed"]), key=list(table["seed"]).index))
    assert f"  replicate seeds: {seeds} (the same for every trial)" in lines
    for line in previewed:  # the trials the launch then ran, variable for variable
        trial, params = line.strip().removeprefix("trial ").split(": ", 1)
        row = table[table["trial"] == int(trial)].iloc[0]
        assert params == f"lr={row['lr']:.4g}, width={row['width']}"
    sweep.write_text(sweep.read_text().replace("trials: 4", "trials: 6"))
    again = cli("launch", str(sweep), "--dry-run", cwd=tmp_path)
    assert f"  results: {folder}, resumed: 12 runs done, 4 trials finished" in again.stdout
    assert "  next new trials:\n    trial 4: " in again.stdout and "trial 6:" not in again.stdout
    assert len(sweeper.load(folder)) == 12
    sweep.write_text(
        sweep.read_text().replace("objective: newcomer_objectives:some_fail", "objective: nope:f")
    )
    bad = cli("launch", str(sweep), "--dry-run", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot import module 'nope'" in bad.stderr


def test_a_dry_run_states_the_comparison_and_its_confirmation(tmp_path: Path) -> None:
    example = HERE.parents[1] / "sweeps" / "datasets.yaml"
    dry = cli("launch", str(example), "--dry-run", "--results", str(tmp_path), cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "  compare: every other level against knn (model) on accuracy, per dataset\n" in dry.stdout
    assert "  then: each arm's best configuration rerun on 5 fresh seeds per setting" in dry.stdout
    assert "  search: grid, 24 trials, seed 0; 5 replicates per trial = 120 runs" in dry.stdout
    assert list(tmp_path.iterdir()) == []
    script = cli("launch", str(example.parent / "script.yaml"), "--dry-run", cwd=tmp_path).stdout.splitlines()
    assert script[0].endswith("script.yaml is valid; nothing was run or written")  # a command: not imported
    assert script[1].startswith("  objective: command: python train_script.py --lr {lr}")
    bucket = cli("launch", str(example), "--dry-run", "--results", "s3://bucket/sweeps", cwd=tmp_path)
    assert (
        "  results: s3://bucket/sweeps/classifiers-across-datasets (object storage: not read by a dry run)"
        in bucket.stdout.splitlines()
    )
    slurm = cli("launch", str(example), "--dry-run", "--slurm", "--results", str(tmp_path), cwd=tmp_path)
    assert slurm.returncode == 0 and slurm.stdout.endswith("  (--slurm: nothing was submitted)\n")


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("def broken(x)\n    return x\n", ["    def broken(x)", "SyntaxError: expected ':'"]),
        ("x = undefined_name\n", ["Traceback (most recent call last):", "    x = undefined_name"]),
    ],
)
def test_a_module_that_fails_to_import_shows_its_own_lines_only(
    tmp_path: Path, source: str, shown: list[str]
) -> None:
    sweep = write_sweep(tmp_path, "some_fail", trials=2)
    (tmp_path / "newcomer_objectives.py").write_text(source)
    out = cli("launch", str(sweep), "--dry-run", cwd=tmp_path)
    assert out.returncode == 2 and "objective: importing 'newcomer_objectives' raised" in out.stderr
    lines = out.stderr.splitlines()
    assert all(line in lines for line in shown), out.stderr
    assert any(line.startswith(f'  File "{tmp_path / "newcomer_objectives.py"}", line 1') for line in lines)
    assert "importlib" not in out.stderr and "sweeper/run/objective.py" not in out.stderr


def test_curves_that_never_report_the_primary_metric_are_warned_of(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "misreports", trials=2)
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "warning: 6 runs reported steps (trial.report) without loss, the primary metric" in out.stdout
    assert "los" in sweeper.load_history(tmp_path / "results" / "first").columns  # still recorded


def test_a_python_launch_carries_the_summarys_warnings(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "extras", trials=3)
    result = sweeper.launch(str(sweep), results=tmp_path / "r", backend="local", progress=False)
    assert result.warnings == [
        "runs also returned 'n_params', 'note', not declared in metrics:, so not recorded; add them to "
        "metrics: (e.g. - n_params: maximize) to keep them"
    ]
    assert "warning: runs also returned &#x27;n_params&#x27;, &#x27;note&#x27;" in result._repr_html_()


def test_a_comparison_within_data_sets_gives_the_best_of_each(tmp_path: Path) -> None:
    more = (
        "  opt: {choice: [a, b]}\n  data: {choice: [x, y]}\n",
        "compare: {variable: opt, treatment: b, baseline: a, within: data}\n",
    )
    sweep = write_sweep(tmp_path, "blocked", trials=8, more=more)
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    at = lines.index("best per data (compare: within:):")
    x, y = lines[at + 1 : at + 3]
    assert x.startswith("  data=x: trial ") and y.startswith("  data=y: trial "), out.stdout
    assert "data=" not in x.split(" with ", 1)[1] and "(mean of 3) with lr=" in x
    assert float(y.split("loss=")[1].split()[0]) > 10 > float(x.split("loss=")[1].split()[0])
    assert not any(line.startswith("best: trial") for line in lines)  # not the easiest data set's best
    result = sweeper.launch(str(sweep), results=tmp_path / "results", backend="local", progress=False)
    per = result.best_per_setting  # the same from Python, and in the notebook card
    assert [b["setting"] for b in per] == [{"data": "x"}, {"data": "y"}] and "data" not in per[0]["params"]
    assert x == f"  data=x: trial {per[0]['trial']} loss={per[0]['mean']:.6g} (mean of 3) with " + ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in per[0]["params"].items()
    )
    card = result._repr_html_()
    assert "best per data:<br>" in card and f"data=x: trial {per[0]['trial']} loss=" in card
    assert "best: trial" not in card


def test_a_refusal_names_the_option_as_the_caller_gives_it(tmp_path: Path) -> None:
    """The same sweep file launched from Python hears `fresh=True`, from the command line `--fresh`."""
    sweep = write_sweep(tmp_path, "some_fail", trials=2)
    sweeper.launch(sweep, results=tmp_path / "results", backend="local", progress=False)
    sweep.write_text(sweep.read_text().replace("width: {int: [8, 64]}", "width: {int: [8, 65]}"))
    with pytest.raises(sweeper.SweeperError) as info:
        sweeper.launch(sweep, results=tmp_path / "results", backend="local", progress=False)
    text = str(info.value)
    assert f"(experiment: in {sweep})" in text and "relaunch with fresh=True" in text
    assert "--fresh" not in text
    out = cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path)
    assert out.returncode == 2 and "relaunch with --fresh" in out.stderr and "fresh=True" not in out.stderr


def test_interrupted_and_status_hints_are_absolute(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path / "exp", "some_fail", trials=2)
    out = cli("launch", "first.yaml", "--backend", "local", "-q", cwd=tmp_path / "exp")
    assert out.returncode == 0, out.stderr
    assert f"results: {tmp_path / 'exp' / 'results' / 'first'}  (sweeper.load(" in out.stdout
    assert "verdict:" not in out.stdout  # no comparison stated: no verdict to point at
    record = sweeper.load(tmp_path / "exp" / "results" / "first")
    assert len(record) == 6
    status = cli("status", str(tmp_path / "exp" / "results" / "first"), cwd=tmp_path)
    assert (
        f"`sweeper launch {sweep} --results {tmp_path / 'exp' / 'results'} --backend local --retry-failed`"
        in status.stdout
    )


def test_a_comparison_sweep_ends_with_the_command_that_gives_its_verdict(tmp_path: Path) -> None:
    more = ("  opt: {choice: [a, b]}\n", "compare: {variable: opt, treatment: b, baseline: a}\n")
    write_sweep(tmp_path / "my exp", "optimizers", trials=8, more=more)
    out = cli("launch", "first.yaml", "--backend", "local", "-q", cwd=tmp_path / "my exp")
    assert out.returncode == 0, out.stderr
    hint = [line for line in out.stdout.splitlines() if line.startswith("verdict: ")]
    assert len(hint) == 1, out.stdout
    command = shlex.split(hint[0].removeprefix("verdict: ").split("  (")[0])  # quoted: a space
    assert command == ["sweeper", "report", str(tmp_path / "my exp" / "results" / "first")]
    report = cli(*command[1:], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    verdict = "supported at \N{GREEK SMALL LETTER ALPHA} = 0.05: b is lower than a by"
    assert report.stdout.startswith(verdict), report.stdout
    assert "Warning" not in report.stderr  # the same noise in both arms cancels: no scipy warning
    markdown = (Path(command[2]) / "report" / "report.md").read_text()
    assert "represented by its best trial (lowest mean loss over its replicates" in markdown  # minimized


def test_wrong_folders_get_a_did_you_mean(tmp_path: Path) -> None:
    sweep = write_sweep(tmp_path, "some_fail", trials=2)
    assert cli("launch", str(sweep), "--backend", "local", "-q", cwd=tmp_path).returncode == 0
    folder = tmp_path / "results" / "first"
    report = cli("report", "first.yaml", cwd=tmp_path)
    assert report.returncode == 2
    assert report.stderr == (
        "error: first.yaml: not a results folder (no experiment.json)\n"
        f"  fix: first.yaml is a sweep file; did you mean {folder}?\n"
    )
    status = cli("status", "first", cwd=tmp_path)
    assert f"fix: did you mean {folder}?" in status.stderr and not status.stderr.startswith("\n")
    table = cli("table", "frist", cwd=tmp_path)
    assert f"fix: did you mean {folder}?" in table.stderr
    for command in ("components", "errors", "serve", "dashboard"):  # each command that reads a folder
        wrong = cli(command, "results/frist", cwd=tmp_path)
        assert wrong.returncode == 2 and f"fix: did you mean {folder}?" in wrong.stderr, command
    version = cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("sweeper ")


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("newcomer_objectivs:typo", "fix: did you mean newcomer_objectives:typo? Else put"),
        ("newcomer_objectives:tpyo", "fix: did you mean newcomer_objectives:typo? Else define"),
    ],
)
def test_an_objective_that_cannot_be_imported_names_the_file_and_a_close_name(
    tmp_path: Path, objective: str, message: str
) -> None:
    sweep = write_sweep(tmp_path, "typo")
    sweep.write_text(sweep.read_text().replace("newcomer_objectives:typo", objective))
    out = cli("launch", str(sweep), "--backend", "local", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {sweep}: objective: ") and message in out.stderr, out.stderr


def test_a_dict_specs_missing_module_is_looked_for_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(sweeper.SweeperError) as info:
        sweeper.launch({**load_spec(write_sweep(tmp_path, "typo")).raw, "objective": "models:train"})
    assert str(info.value) == (
        f"<dict>: objective: cannot import module 'models' (looked in {tmp_path} and on PYTHONPATH)\n"
        f"  fix: put models.py in {tmp_path}, or add its folder to PYTHONPATH"
    )  # no sweep file to speak of


RERUN_OBJECTIVE = """
import os

import numpy as np


def train(lr, width, seed):
    print(f"training width={width}")
    if width > 60:
        raise ValueError(f"width {width} too big")
    x = np.random.default_rng(seed).normal(lr, 1.0, width) + float(os.environ.get("SHIFT", "0"))
    return {"loss": float(np.mean(x)), "spread": float(np.std(x))}
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rerun")
    (root / "rerun_objective.py").write_text(RERUN_OBJECTIVE)
    (root / "det.yaml").write_text(
        "experiment: det\nobjective: rerun_objective:train\nmetrics: [{loss: minimize}, {spread: minimize}]\n"
        "variables:\n  lr: {float: [0.001, 0.1], log: true}\n  width: {int: [40, 70]}\n"
        "search: {method: random, trials: 8, seed: 0}\nreplicates: 2\n"
    )
    assert cli("launch", "det.yaml", "--backend", "local", "-q", cwd=root).returncode == 0
    return root / "results" / "det"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def test_rerun_repeats_a_run_bit_for_bit_here_and_writes_nothing(recorded: Path) -> None:
    df = sweeper.load(recorded)
    row = df[(df["status"] == "complete") & (df["replicate"] == 1)].iloc[0]
    before = snapshot(recorded)
    out = cli("rerun", str(recorded), str(row["trial"]), "--replicate", "1", cwd=recorded.parent)
    assert out.returncode == 0, out.stderr
    assert f"training width={row['width']}" in out.stdout  # the objective's prints, in the foreground
    assert f"seed {row['seed']}" in out.stdout
    assert f"loss: recorded {float(row['loss'])!r}, now {float(row['loss'])!r}  same" in out.stdout
    assert "matches the recorded row bit for bit" in out.stdout
    assert snapshot(recorded) == before


def test_rerun_says_when_the_metrics_differ(recorded: Path) -> None:
    trial = int(sweeper.load(recorded).query("status == 'complete'")["trial"].iloc[0])
    env = {**os.environ, "SHIFT": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "rerun", str(recorded), str(trial)],
        cwd=recorded.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    assert "DIFFERS" in out.stdout and "does not match the recorded row" in out.stdout


def test_rerun_pdb_stops_where_the_objective_raises(recorded: Path) -> None:
    df = sweeper.load(recorded)
    failed = df[df["status"] == "failed"].iloc[0]
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "rerun", str(recorded), str(failed["trial"]), "--pdb"],
        cwd=recorded.parent,
        input="p width\nc\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert '-> raise ValueError(f"width {width} too big")' in out.stdout, out.stdout + out.stderr
    assert f"(Pdb) {failed['width']}" in out.stdout
    assert "status: recorded failed, now failed" in out.stdout


def test_rerun_record_writes_the_run_as_its_next_attempt(recorded: Path) -> None:
    df = sweeper.load(recorded)
    row = df[df["status"] == "complete"].iloc[-1]
    out = cli(
        "rerun",
        str(recorded),
        str(row["trial"]),
        "--replicate",
        str(row["replicate"]),
        "--record",
        cwd=recorded,
    )
    assert out.returncode == 0, out.stderr
    after = sweeper.load(recorded)
    assert len(after) == len(df)
    again = after[(after["trial"] == row["trial"]) & (after["replicate"] == row["replicate"])].iloc[0]
    assert again["attempt"] == row["attempt"] + 1 and again["node"] == "rerun"
    assert again["loss"] == row["loss"] and again["seed"] == row["seed"]
