"""Learning curves: reports from trial code land in the history/ table, streamed while runs go on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import sweeper

OBJECTIVES = textwrap.dedent('''
    import time
    from pathlib import Path

    import sweeper


    def curve(lr, seed, trial, steps=5):
        for step in range(steps):
            trial.report(step, loss=lr / (step + 1), grad_norm=float(step))
        assert trial.params == {"lr": lr} and trial.seed == seed
        return lr / steps


    def via_context(lr):
        sweeper.current_trial().report(0, loss=lr, extra=1)
        sweeper.current_trial().report(1, loss=lr / 2)
        return lr / 2


    def fails_late(lr, trial):
        trial.report(0, loss=lr)
        raise RuntimeError("diverged")


    def waits_for_own_row(lr, trial, results):
        """Returns only once its first report is readable in the history table: streamed."""
        trial.report(0, loss=lr)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                h = sweeper.load_history(Path(results))
            except Exception:
                h = None
            if h is not None and len(h) and ((h.trial == trial.id) & (h.replicate == trial.replicate)).any():
                return lr
            time.sleep(0.05)
        raise TimeoutError("history row never appeared while the run was going")
''')


def _sweep(tmp_path: Path, objective: str, **extra) -> dict:
    (tmp_path / "hist_objectives.py").write_text(OBJECTIVES)
    spec = {
        "experiment": "hist",
        "objective": f"hist_objectives:{objective}",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"choice": [0.1, 0.2, 0.4]}},
        "search": {"method": "grid"},
        "replicates": 2,
        **extra,
    }
    return spec


def test_reports_land_in_history_table(tmp_path):
    spec = _sweep(tmp_path, "curve")
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="local")
    h = sweeper.load_history(run.path)
    assert len(h) == 3 * 2 * 5
    assert list(h.columns[:5]) == ["trial", "replicate", "attempt", "step", "time"]
    assert {"loss", "grad_norm"} <= set(h.columns)
    assert str(h["time"].dtype) == "datetime64[us, UTC]"
    first = h[(h.trial == 0) & (h.replicate == 1)]
    assert first.step.tolist() == [0, 1, 2, 3, 4]
    assert first.loss.tolist() == pytest.approx([0.1 / (s + 1) for s in range(5)])
    assert (run.path / "history").is_dir() and not (run.path / "artifacts").exists()  # nothing asked


def test_current_trial_and_new_metric_names(tmp_path):
    spec = _sweep(tmp_path, "via_context")
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="local")
    h = sweeper.load_history(run.path)
    assert len(h) == 12
    assert h[h.step == 0].extra.tolist() == [1.0] * 6
    assert h[h.step == 1].extra.isna().all()


def test_failed_run_keeps_its_history(tmp_path):
    spec = _sweep(tmp_path, "fails_late")
    with pytest.raises(sweeper.SweeperError, match="all failed with the same error"):  # a bug stops it early
        sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="local")
    folder = tmp_path / "r" / "hist"
    table = sweeper.load(folder)
    assert set(table.status) == {"failed"}
    assert "diverged" in table.error.iloc[0]
    assert len(sweeper.load_history(folder)) == len(table) >= 5  # each failed run's one report is kept


def test_current_trial_outside_a_run_says_so():
    with pytest.raises(RuntimeError, match="only available inside a run"):
        sweeper.current_trial()


def test_report_refuses_bad_values(tmp_path):
    (tmp_path / "bad_reports.py").write_text(
        textwrap.dedent("""
        def bad(lr, trial):
            trial.report(0, loss="high")
    """)
    )
    spec = {
        "experiment": "bad",
        "objective": "bad_reports:bad",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"choice": [0.1]}},
        "search": {"method": "grid"},
    }
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="local")
    assert "not a number" in run.table.error.iloc[0]


@pytest.mark.timeout(120)
def test_history_streams_on_ray_while_runs_go_on(tmp_path, ray_session):
    spec = _sweep(
        tmp_path,
        "waits_for_own_row",
        components={"results": {"value": {"note": "unused"}, "kind": "metadata"}},
    )
    # the objective polls the results folder it is handed; a metadata component carries no path
    spec.pop("components")
    spec["variables"]["results"] = str(tmp_path / "r" / "hist")
    spec["replicates"] = 1
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="ray")
    assert set(run.table.status) == {"complete"}, run.table.error.tolist()
    h = sweeper.load_history(run.path)
    assert sorted(h.trial) == [0, 1, 2]


@pytest.mark.timeout(120)
def test_current_trial_reports_reach_history_on_ray(tmp_path, ray_session):
    spec = _sweep(tmp_path, "via_context")
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="ray")
    assert len(sweeper.load_history(run.path)) == 12


def test_a_plain_sweep_leaves_no_runtime_traces(tmp_path):
    (tmp_path / "plain_obj.py").write_text("def f(lr):\n    return lr\n")
    spec = {
        "experiment": "plain",
        "objective": "plain_obj:f",
        "metrics": [{"loss": "minimize"}],
        "variables": {"lr": {"choice": [0.1, 0.2]}},
        "search": {"method": "grid"},
    }
    run = sweeper.launch(sweeper.load_spec(spec, root=tmp_path), results=tmp_path / "r", backend="local")
    assert len(run.table) == 2
    for name in ("history", "artifacts", "components"):
        assert not (run.path / name).exists(), name
    assert sweeper.load_history(run.path).empty
