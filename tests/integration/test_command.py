"""Command-line objectives: any program per run, values as arguments and SWEEPER_* variables."""

from __future__ import annotations

import json
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import sweeper
from sweeper.errors import ObjectiveError, SpecError

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    trial_dir = os.environ["SWEEPER_TRIAL_DIR"]
    with open(os.path.join(trial_dir, "seen.json"), "w") as fh:
        json.dump({"argv": sys.argv[1:], "cwd": os.getcwd(),
                   "env": {k: v for k, v in os.environ.items() if k.startswith("SWEEPER_")}}, fh)
    mode = args.get("--mode", "ok")
    lr = float(args["--lr"])
    print("starting", flush=True)
    if mode == "crash":
        print("it all went wrong", file=sys.stderr)
        sys.exit(3)
    if mode == "silent":
        print(json.dumps({"other": 1}))
        sys.exit(0)
    for step in range(int(args.get("--steps", 5))):
        print(json.dumps({"step": step, "loss": lr + 1.0 / (step + 1), "note": "text is skipped"}))
        time.sleep(float(args.get("--sleep", 0)))
    if mode == "file":
        with open(os.path.join(trial_dir, "metrics.json"), "w") as fh:
            json.dump({"loss": 42.0}, fh)
    print(json.dumps({"loss": lr, "acc": 1 - lr}))
""")


def _spec(tmp_path: Path, name: str, command, **extra) -> sweeper.Experiment:
    (tmp_path / "script.py").write_text(SCRIPT)
    data = {
        "experiment": name,
        "command": command,
        "metrics": [{"loss": "minimize"}, {"acc": "maximize"}],
        "variables": {"lr": {"choice": [0.1, 0.5]}, "mode": "ok"},
        "search": {"method": "grid"},
        **extra,
    }
    return sweeper.load_spec(data, root=tmp_path)


PY = sys.executable


def test_command_runs_without_shell_and_reads_metrics(tmp_path):
    evil = "x; touch PWNED $(touch PWNED2)"
    spec = _spec(
        tmp_path,
        "plain",
        [PY, "script.py", "--lr", "{lr}", "--mode", "{mode}", "--tag", "{tag}", "--seed", "{seed}"],
        variables={"lr": {"choice": [0.1, 0.5]}, "mode": "ok", "tag": evil},
        replicates=2,
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    table = run.table
    assert set(table.status) == {"complete"}
    assert table.loss.tolist() == [0.1, 0.1, 0.5, 0.5]
    assert table.acc.tolist() == pytest.approx([0.9, 0.9, 0.5, 0.5])
    assert not list(tmp_path.rglob("PWNED*"))
    rep = run.path / "artifacts" / "trial-1" / "rep-1"
    seen = json.loads((rep / "seen.json").read_text())
    assert seen["argv"][seen["argv"].index("--tag") + 1] == evil
    assert seen["cwd"] == str(tmp_path)
    env = seen["env"]
    assert env["SWEEPER_LR"] == "0.5" and env["SWEEPER_TAG"] == evil
    assert env["SWEEPER_SEED"] == str(table.seed.iloc[3]) and env["SWEEPER_TRIAL"] == "1"
    assert env["SWEEPER_REPLICATE"] == "1" and env["SWEEPER_TRIAL_DIR"] == str(rep)
    assert "starting" in (rep / "stdout.log").read_text()
    history = sweeper.load_history(run.path)
    assert len(history) == 4 * 5 and "note" not in history.columns


def test_shell_true_quotes_values(tmp_path):
    evil = "'; touch PWNED; echo '"
    spec = _spec(
        tmp_path,
        "shell",
        f"{PY} script.py --lr {{lr}} --tag {{tag}} | cat",
        variables={"lr": {"choice": [0.1]}, "tag": evil},
        shell=True,
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    assert set(run.table.status) == {"complete"}, run.table.error.tolist()
    assert not list(tmp_path.rglob("PWNED*"))
    seen = json.loads((run.path / "artifacts" / "trial-0" / "rep-0" / "seen.json").read_text())
    assert seen["argv"][-1] == evil


def test_metrics_file_wins_and_workdir(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "script.py").write_text(SCRIPT)
    spec = _spec(tmp_path, "file", [PY, "script.py", "--lr", "{lr}", "--mode", "file"], workdir="sub")
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    assert run.table.loss.tolist() == [42.0, 42.0]
    assert run.table.acc.isna().all()
    assert run.stats.undeclared == set()


def test_keys_no_metric_declares_are_counted_for_the_summary(tmp_path):
    spec = _spec(tmp_path, "extra", [PY, "script.py", "--lr", "{lr}", "--steps", "0"])
    spec = sweeper.load_spec({**spec.raw, "metrics": [{"loss": "minimize"}]}, root=tmp_path)
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    assert run.stats.undeclared == {"acc"}  # the last JSON line's other key; "step" is not one


def test_failures_keep_the_output_tail(tmp_path):
    spec = _spec(
        tmp_path,
        "crash",
        [PY, "script.py", "--lr", "{lr}", "--mode", "{mode}"],
        variables={"lr": {"choice": [0.1]}, "mode": {"choice": ["crash", "silent"]}},
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    crash, silent = run.table.error.tolist()
    assert "exited with code 3" in crash and "it all went wrong" in crash
    assert "no 'loss'" in silent and "metrics.json" in silent
    assert set(run.table.status) == {"failed"}


def test_a_missing_program_stops_the_sweep(tmp_path):
    spec = _spec(tmp_path, "missing", ["no-such-program-xyz", "--lr", "{lr}"])
    with pytest.raises(ObjectiveError, match="cannot start 'no-such-program-xyz'"):
        sweeper.launch(spec, results=tmp_path / "r", backend="local")


def test_pruning_stops_scripts(tmp_path):
    variables = {"lr": {"choice": [0.0, 0.1, 3.0, 4.0, 5.0, 6.0]}, "mode": "ok"}
    cmd = [PY, "script.py", "--lr", "{lr}", "--steps", "30", "--sleep", "0.02"]
    full = sweeper.launch(
        _spec(tmp_path, "full", cmd, variables=variables), results=tmp_path / "r", backend="local"
    )
    spec = _spec(
        tmp_path,
        "pruned",
        cmd,
        variables=variables,
        pruner={"method": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="local")
    table = run.table
    assert table.status.tolist() == ["complete", "complete", "pruned", "pruned", "pruned", "pruned"]
    pruned = table[table.status == "pruned"]
    assert (pruned.loss > 3).all()  # the last reported values
    assert len(sweeper.load_history(run.path)) < 0.5 * len(sweeper.load_history(full.path))


@pytest.mark.timeout(120)
def test_command_sweep_on_ray(tmp_path, ray_session):
    spec = _spec(
        tmp_path,
        "ray",
        [PY, "script.py", "--lr", "{lr}"],
        replicates=2,
        pruner={"method": "median", "n_startup_trials": 1},
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="ray")
    assert set(run.table.status) <= {"complete", "pruned"}
    assert len(sweeper.load_history(run.path)) >= 8


def test_example_script_sweep(tmp_path):
    data = yaml.safe_load((REPO / "sweeps" / "script.yaml").read_text())
    data["command"] = data["command"].replace("python ", f"{PY} ", 1)
    data["search"]["trials"] = 4
    spec = sweeper.load_spec(data, root=REPO / "sweeps")
    run = sweeper.launch(spec, results=tmp_path, backend="local")
    assert set(run.table.status) <= {"complete", "pruned"} and (run.table.status == "complete").any()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"objective": "m:f"}, "exactly one of objective"),
        ({"command": "python x.py --lr {lrr}"}, r"did you mean \{lr\}"),
        (
            {
                "command": "python x.py --m {momentum}",
                "variables": {
                    "opt": {"choice": ["sgd", "m"]},
                    "momentum": {"float": [0, 1], "when": {"opt": "m"}},
                },
            },
            "SWEEPER_MOMENTUM",
        ),
        ({"command": "python 'x.py"}, "close the quote"),
        ({"shell": "yes"}, "true or false"),
    ],
)
def test_command_validation(tmp_path, change, message):
    data = {
        "experiment": "v",
        "command": "python x.py --lr {lr}",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"float": [0.1, 1.0]}},
        "search": {"method": "random", "trials": 2},
    }
    data.update(change)
    with pytest.raises(SpecError, match=message):
        sweeper.load_spec(data, root=tmp_path)


def test_workdir_is_checked_at_launch_not_when_reading(tmp_path):
    """Reading is pure (a results folder copied elsewhere still reads); launch needs the folder."""
    data = {
        "experiment": "v",
        "command": "python x.py --lr {lr}",
        "workdir": "nowhere",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"float": [0.1, 1.0]}},
        "search": {"method": "random", "trials": 2},
    }
    spec = sweeper.load_spec(data, root=tmp_path)
    assert spec.command.workdir == str(tmp_path / "nowhere")
    with pytest.raises(SpecError, match="no such folder") as err:
        sweeper.launch(spec, results=tmp_path / "r", backend="local")
    assert err.value.fix.endswith(f"relative to {tmp_path}")
    assert not (tmp_path / "r").exists()


def test_objective_or_command_is_required(tmp_path):
    with pytest.raises(SpecError, match="exactly one of objective"):
        sweeper.load_spec(
            {
                "experiment": "v",
                "metrics": [{"loss": "minimize"}],
                "variables": {"lr": 0.1},
                "search": {"method": "grid"},
            },
            root=tmp_path,
        )


@pytest.mark.timeout(120)
def test_a_timed_out_command_leaves_no_process_behind(tmp_path, ray_session):
    import psutil

    (tmp_path / "slow.py").write_text(
        textwrap.dedent("""
        import os, time
        with open(os.path.join(os.environ["SWEEPER_TRIAL_DIR"], "pid"), "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(float(os.environ["SWEEPER_NAP"]))
        print('{"loss": 1.0}')
    """)
    )
    spec = sweeper.load_spec(
        {
            "experiment": "slow",
            "command": [PY, "slow.py"],
            "metrics": [{"loss": "minimize"}],
            "variables": {"nap": {"choice": [0.1, 120]}},
            "search": {"method": "grid"},
            "timeout": "12s",
        },
        root=tmp_path,
    )
    run = sweeper.launch(spec, results=tmp_path / "r", backend="ray")
    assert run.table.status.tolist() == ["complete", "timeout"]
    pid = int((run.path / "artifacts" / "trial-1" / "rep-0" / "pid").read_text())
    deadline = time.time() + 10
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        assert time.time() < deadline, "the program outlived its killed run"
        time.sleep(0.1)
