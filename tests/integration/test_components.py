"""Trial components: declared inputs hashed once and linked to every trial, a shared job run once,
outputs logged by runs, changed inputs refused on resume, and `sweeper components DIR`."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import sweeper
from sweeper.errors import SpecError, SweeperError
from sweeper.results.components import load_components

CODE = textwrap.dedent('''
    import json
    from pathlib import Path

    import numpy as np


    def make_features(train_data, out):
        """The shared preprocessing job: standardise x once for every trial."""
        calls = Path(out).parent.parent.parent / "job-calls.txt"
        calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
        data = np.load(train_data)
        x = (data["x"] - data["x"].mean()) / data["x"].std()
        np.savez(Path(out) / "features.npz", x=x, y=data["y"])
        return "features.npz"


    def fit(lr, seed, trial, features, train_data):
        assert trial.components["features"] == features and train_data.endswith("train.npz")
        data = np.load(features)
        w = np.zeros(2)
        for _ in range(50):
            err = w[0] * data["x"] + w[1] - data["y"]
            w = w - lr * 2 * np.array([np.mean(err * data["x"]), np.mean(err)])
        np.save(trial.artifact_dir / "weights.npy", w)
        trial.log_component("weights", "weights.npy", kind="model")
        note = Path(str(trial.artifact_dir) + "-note.json")
        note.write_text(json.dumps({"lr": lr}))
        trial.log_component("note", note, kind="metadata")  # outside: copied in
        return float(np.mean((w[0] * data["x"] + w[1] - data["y"]) ** 2))
''')


def _write_data(folder: Path, slope: float = 2.5) -> Path:
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 200)
    path = folder / "data" / "train.npz"
    path.parent.mkdir(exist_ok=True)
    np.savez(path, x=x, y=slope * x - 1 + rng.normal(0, 0.1, x.size))
    return path


def _spec(tmp_path: Path, **extra) -> sweeper.Experiment:
    (tmp_path / "comp_objectives.py").write_text(CODE)
    data = {
        "experiment": "comps",
        "objective": "comp_objectives:fit",
        "metrics": [{"mse": "minimize"}],
        "variables": {"lr": {"choice": [0.01, 0.1, 0.3]}},
        "search": {"method": "grid"},
        "replicates": 2,
        "components": {
            "train_data": {"path": "data/train.npz", "kind": "dataset"},
            "features": {"job": "comp_objectives:make_features", "kind": "dataset"},
            "source": {"value": {"origin": "synthetic", "n": 200}},
        },
        **extra,
    }
    return sweeper.load_spec(data, root=tmp_path)


def test_components_are_hashed_linked_and_shared(tmp_path):
    data = _write_data(tmp_path)
    run = sweeper.launch(_spec(tmp_path), results=tmp_path / "r", backend="local")
    assert set(run.table.status) == {"complete"}, run.table.error.tolist()
    assert (tmp_path / "r" / "comps" / "job-calls.txt").read_text() == "x"  # run once for all 6 runs
    df = load_components(run.path)
    items = df.drop_duplicates("id").set_index("name")
    assert items.loc["train_data", "sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert items.loc["train_data", "bytes"] == data.stat().st_size
    assert items.loc["comp_objectives:make_features", "kind"] == "job"
    assert items.loc["features", "uri"].endswith("artifacts/jobs/features/features.npz")
    assert items.loc["source", "kind"] == "metadata"
    # a declared component is one component linked to every trial (never to the experiment itself)
    inputs = df[df.role == "input"]
    assert inputs.groupby("name").trial.nunique().to_dict() == {
        "train_data": 3,
        "features": 3,
        "comp_objectives:make_features": 3,
        "source": 3,
    }
    assert inputs.replicate.isna().all()
    outputs = df[df.role == "output"]
    assert len(outputs[outputs.name == "weights"]) == 6  # one model per run
    assert set(outputs.kind) == {"model", "metadata"}
    # fit() ignores the seed, so both replicates of a trial make the same weights: one component
    # (its id comes from the content) linked to both runs
    assert outputs[outputs.name == "weights"].id.nunique() == 3
    weights = outputs[(outputs.name == "weights") & (outputs.trial == 2) & (outputs.replicate == 1)].iloc[0]
    w_path = run.path / "artifacts" / "trial-2" / "rep-0" / "weights.npy"
    assert weights.uri == w_path.as_uri()
    assert weights.sha256 == hashlib.sha256(w_path.read_bytes()).hexdigest()
    assert (run.path / "artifacts" / "trial-0" / "rep-0" / "rep-0-note.json").is_file()


def test_resume_refuses_a_changed_dataset_and_reuses_the_job(tmp_path):
    _write_data(tmp_path)
    spec = _spec(tmp_path)
    sweeper.launch(spec, results=tmp_path / "r", backend="local")
    again = sweeper.launch(_spec(tmp_path), results=tmp_path / "r", backend="local")  # unchanged
    assert (tmp_path / "r" / "comps" / "job-calls.txt").read_text() == "x"  # its output was reused
    assert len(again.table) == 6
    _write_data(tmp_path, slope=3.0)
    with pytest.raises(SweeperError, match=r"components.train_data: .*train.npz changed since"):
        sweeper.launch(_spec(tmp_path), results=tmp_path / "r", backend="local")
    # the message says how to go on: --fresh starts over with the new data
    fresh = sweeper.launch(_spec(tmp_path), results=tmp_path / "r", backend="local", fresh=True)
    assert len(fresh.table) == 6


def test_a_missing_input_is_refused_before_any_run(tmp_path):
    with pytest.raises(SweeperError, match="no such file or folder"):
        sweeper.launch(_spec(tmp_path), results=tmp_path / "r", backend="local")


def test_components_cli(tmp_path):
    _write_data(tmp_path)
    run = sweeper.launch(_spec(tmp_path, replicates=1), results=tmp_path / "r", backend="local")
    out = subprocess.run(
        [sys.executable, "-m", "sweeper", "components", str(run.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["kind", "name", "sha256", "size"]
    train = next(line for line in lines if " train_data " in line)
    assert "3 trials (in)" in train and train.startswith("dataset")
    assert sum(" weights " in line for line in lines) == 3
    one = subprocess.run(
        [sys.executable, "-m", "sweeper", "components", str(run.path), "--trial", "1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert sum(" weights " in line for line in one.splitlines()) == 1


@pytest.mark.parametrize(
    ("components", "message"),
    [
        ({"lr": {"path": "x"}}, "already a variable"),
        ({"d": {"path": "x", "kind": "tabel"}}, "unknown kind"),
        ({"d": {"path": "x", "job": "m:f"}}, "exactly one of path, job, value"),
        ({"d": {"job": "not a target"}}, "module:function"),
        ({"d": {"path": "x", "role": "input"}}, "unknown key"),
    ],
)
def test_component_validation(tmp_path, components, message):
    with pytest.raises(SpecError, match=message):
        _spec(tmp_path, components=components)


@pytest.mark.timeout(120)
def test_components_on_ray(tmp_path, ray_session):
    _write_data(tmp_path)
    run = sweeper.launch(_spec(tmp_path, replicates=1), results=tmp_path / "r", backend="ray")
    assert set(run.table.status) == {"complete"}, run.table.error.tolist()
    df = load_components(run.path)
    assert len(df[(df.role == "output") & (df.name == "weights")]) == 3
    assert df[df.role == "input"].trial.nunique() == 3


def test_components_example_and_a_changed_copy_of_its_data(tmp_path):
    import shutil

    import yaml

    repo = Path(__file__).resolve().parents[2] / "sweeps"
    for name in ("components.yaml", "prep.py"):
        shutil.copy(repo / name, tmp_path / name)
    shutil.copytree(repo / "data", tmp_path / "data")
    data = yaml.safe_load((tmp_path / "components.yaml").read_text())
    data["search"]["trials"] = 3
    run = sweeper.launch(sweeper.load_spec(data, root=tmp_path), results=tmp_path / "r", backend="local")
    assert set(run.table.status) == {"complete"}
    df = load_components(run.path)
    assert set(df[df.role == "input"].name) == {"raw", "features", "prep:standardize", "source"}
    assert len(df[df.role == "output"]) == 6
    with open(tmp_path / "data" / "houses.csv", "a") as fh:
        fh.write("1.0,2.0,3.0\n")
    with pytest.raises(SweeperError, match=r"components.raw: .*houses.csv changed since"):
        sweeper.launch(sweeper.load_spec(data, root=tmp_path), results=tmp_path / "r", backend="local")
