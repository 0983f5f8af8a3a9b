"""The objective given as a Python function (a notebook's or a script's own), not as module:function."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import sweeper
from sweeper.errors import ObjectiveError
from sweeper.run.objective import load_objective
from sweeper.run.types import RunContext
from sweeper.spec.experiment import Experiment, Metric, Search, Variable
from tests.conftest import sweep_spec

VARIABLES = {"x": {"float": [0.0, 1.0]}, "kind": {"choice": ["a", "b"]}}


def test_a_closure_runs_on_ray_as_on_local_and_is_recorded_by_name(
    tmp_path: Path, ray_session: object
) -> None:
    offset = 0.25  # the closure's own state travels with it to the workers

    def train(x: float, kind: str, seed: int) -> dict[str, float]:
        noise = np.random.default_rng(seed).normal(0, 0.01)
        loss = (x - offset) ** 2 + (0.1 if kind == "b" else 0.0) + noise
        return {"loss": loss, "x_abs": float(os.getpid())}  # which process ran it

    spec = sweep_spec(objective=train, variables=VARIABLES)
    on_ray = sweeper.launch(spec, results=tmp_path / "ray", backend="ray")
    here = sweeper.launch(spec, results=tmp_path / "local", backend="local")
    assert on_ray.stats.counts == {"complete": 12}
    assert os.getpid() not in set(on_ray.table["x_abs"]) and set(here.table["x_abs"]) == {os.getpid()}
    columns = ["trial", "replicate", "seed", "x", "kind", "loss"]
    ray_rows = on_ray.table.sort_values(["trial", "replicate"])[columns].reset_index(drop=True)
    assert ray_rows.equals(here.table.sort_values(["trial", "replicate"])[columns].reset_index(drop=True))
    name = f"{__name__}:train"
    assert on_ray.spec.objective == name
    recorded = json.loads((on_ray.path / "experiment.json").read_text())
    assert recorded["spec"]["objective"] == name  # a name, not a function JSON cannot hold
    tasks = sweeper.launch({**spec, "timeout": "1m"}, results=tmp_path / "tasks", backend="ray")
    task_rows = tasks.table.sort_values(["trial", "replicate"])[columns].reset_index(drop=True)
    assert task_rows.equals(ray_rows)  # a timeout sends plain tasks (the context from the object store)
    again = sweeper.launch(spec, results=tmp_path / "local", backend="local")  # resumes: nothing left
    assert again.stats.runs_done == 12 and again.stats.runs_before == 12


def test_an_experiment_built_in_python_takes_a_function(tmp_path: Path) -> None:
    def loss(x: float) -> float:
        return (x - 0.5) ** 2

    e = Experiment(
        name="built",
        objective=loss,  # type: ignore[arg-type]  # a function in place of its module:function name
        metrics=(Metric("loss", "minimize"),),
        variables=(Variable("x", "float", low=0.0, high=1.0),),
        search=Search("random", 5),
    )
    run = sweeper.launch(e, results=tmp_path, backend="local")
    assert run.spec.objective == f"{__name__}:loss" and run.spec.function is loss
    assert run.table["loss"].tolist() == [(x - 0.5) ** 2 for x in run.table["x"]]


def test_a_scripts_own_function_runs_and_its_results_say_how_to_resume(tmp_path: Path) -> None:
    (tmp_path / "run.py").write_text(
        textwrap.dedent("""
        import sweeper

        def train(x, kind):
            print("trained", x)
            return (x - 0.3) ** 2

        if __name__ == "__main__":
            sweeper.launch({"experiment": "script", "objective": train, "metrics": [{"loss": "minimize"}],
                            "variables": {"x": {"float": [0.0, 1.0]}, "kind": "a"},
                            "search": {"method": "random", "trials": 3}}, backend="local", progress=False)
        """)
    )
    out = subprocess.run(
        [sys.executable, "run.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("trained ") == 3
    folder = tmp_path / "results" / "script"
    assert json.loads((folder / "experiment.json").read_text())["spec"]["objective"] == "__main__:train"
    status = subprocess.run(
        [sys.executable, "-m", "sweeper", "status", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert "all runs done; raise trials or replicates in the spec to extend it" in status.stdout
    rerun = subprocess.run(
        [sys.executable, "-m", "sweeper", "rerun", str(folder), "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 2
    assert "objective __main__:train was a function given in Python" in rerun.stderr
    assert "fix: run it from that Python session, or move it to a module file" in rerun.stderr


def test_a_recorded_main_function_is_named_where_it_cannot_be_imported() -> None:
    with pytest.raises(ObjectiveError, match=r"objective __main__:gone was a function given in Python"):
        load_objective(RunContext("__main__:gone", ".", ("loss",)))


def test_a_function_the_workers_cannot_unpickle_stops_the_sweep_with_its_cause(
    tmp_path: Path, ray_session: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "driver_only.py").write_text("def square(x):\n    return x * x\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))  # the driver's path alone: no worker has it
    from driver_only import square  # type: ignore[import-not-found]

    def wrapped(x: float, kind: str) -> float:
        return float(square(x))

    spec = sweep_spec(objective=wrapped, variables=VARIABLES, metrics=[{"loss": "minimize"}])
    with pytest.raises(ObjectiveError) as caught:
        sweeper.launch(spec, results=tmp_path / "r", backend="ray")
    assert f"objective {__name__}:wrapped: cannot be unpickled on this worker: ModuleNotFoundError" in str(
        caught.value
    )
    assert "fix: make the module 'driver_only' it uses importable on the workers" in str(caught.value)
    assert sweeper.launch(spec, results=tmp_path / "l", backend="local", fresh=True).stats.counts == {
        "complete": 12
    }  # in this process it is importable: local runs call it


def test_a_function_that_cannot_be_pickled_is_refused_before_ray_runs_it(tmp_path: Path) -> None:
    lock = threading.Lock()

    def locked(x: float, kind: str) -> float:
        with lock:
            return x

    spec = sweep_spec(objective=locked, variables=VARIABLES, metrics=[{"loss": "minimize"}])
    with pytest.raises(ObjectiveError, match="cannot be sent to the workers: TypeError: cannot pickle"):
        sweeper.launch(spec, results=tmp_path / "r", backend="ray")
    assert not (tmp_path / "r").exists()  # refused before the results folder was made
    assert sweeper.launch(spec, results=tmp_path / "l", backend="local").stats.counts == {"complete": 12}


def test_status_of_a_python_spec_names_the_python_way_to_go_on(tmp_path: Path) -> None:
    from sweeper.results.status import experiment_status, format_status

    def sometimes(x: float, kind: str) -> float:
        if x > 0.5:
            raise ValueError("too big")
        return x

    spec = sweep_spec(objective=sometimes, variables=VARIABLES, metrics=[{"loss": "minimize"}])
    result = sweeper.launch(spec, results=tmp_path, backend="local")
    assert result.stats.counts.get("failed")
    text = format_status(experiment_status(result.path))
    assert f"again with the same spec and results={str(tmp_path)!r}, retry_failed=True` reruns" in text
    assert "--retry-failed" not in text and "'<dict>'" not in text


def test_zero_dimensional_arrays_are_numbers_and_a_vector_says_how_to_reduce_it(tmp_path: Path) -> None:
    """Training code returns and reports what it computed: numpy scalars and 0-d arrays (torch and jax
    tensors have the same shape and item()); they are numbers, as Optuna reads them."""

    def train(x: float, kind: str, seed: int, trial: sweeper.Trial) -> dict[str, object]:
        loss = np.asarray((x - 0.25) ** 2)
        trial.report(0, loss=loss * 2)
        return {"loss": loss, "x_abs": np.float32(abs(x))}

    metrics = [{"loss": "minimize"}, {"x_abs": "minimize"}]
    spec = sweep_spec(objective=train, variables=VARIABLES, metrics=metrics, replicates=1)
    result = sweeper.launch(spec, results=tmp_path, backend="local", progress=False)
    table = result.table
    assert result.stats.counts == {"complete": 6}
    assert np.allclose(table["loss"], (table["x"] - 0.25) ** 2) and table["loss"].dtype == np.float64
    assert np.allclose(table["x_abs"], table["x"].abs())
    curves = sweeper.load_history(result)
    assert np.allclose(curves.sort_values("trial")["loss"], 2 * table.sort_values("trial")["loss"])

    def vector(x: float, seed: int) -> dict[str, object]:
        return {"loss": np.full(3, x)}

    with pytest.raises(ObjectiveError) as info:
        sweeper.launch(
            sweep_spec(objective=vector, variables={"x": VARIABLES["x"]}),
            results=tmp_path / "v",
            backend="local",
        )
    assert "returned loss=array([" in str(info.value)
    assert "it has shape (3,): reduce it, e.g. float(x.mean())" in str(info.value)

    def flag(x: float, seed: int) -> dict[str, object]:
        return {"loss": np.asarray(x > 0.5)}  # a boolean is not a number, also as an array

    with pytest.raises(ObjectiveError, match=r"returned loss=array\((True|False)\), not a number"):
        sweeper.launch(
            sweep_spec(objective=flag, variables={"x": VARIABLES["x"]}),
            results=tmp_path / "f",
            backend="local",
        )


def test_a_worker_unpickles_a_function_once_and_keeps_only_the_latest_few() -> None:
    """Workers of a long-lived cluster serve launch after launch: each one's function is not kept forever."""
    from sweeper.run.objective import pickled

    def make(k: int) -> object:
        return lambda x: x + k

    contexts = [RunContext("__main__:f", ".", ("loss",), function=pickled("f", make(k))) for k in range(6)]
    first = load_objective(contexts[0])
    assert load_objective(contexts[0]) is first and first(1) == 1  # one unpickling per process, not per run
    assert [load_objective(c)(1) for c in contexts] == [1, 2, 3, 4, 5, 6]
    assert load_objective(contexts[5]) is load_objective(contexts[5])
    assert load_objective(contexts[0]) is not first  # dropped for the later ones, unpickled again
