"""Pruning: Optuna's pruners judge each trial from the latest reports of all its runs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

import sweeper
from sweeper.errors import SpecError

REPO = Path(__file__).resolve().parents[2]
CURVES = REPO / "sweeps" / "curves.yaml"


def _curves(tmp_path: Path, name: str, **changes) -> sweeper.Experiment:
    data = yaml.safe_load(CURVES.read_text())
    data.update(experiment=name, **changes)
    return sweeper.load_spec({k: v for k, v in data.items() if v is not None}, root=CURVES.parent)


def _steps(run: sweeper.SweepResult) -> int:
    return len(sweeper.load_history(run.path))


def test_pruning_cuts_steps_and_keeps_the_best_trial(tmp_path):
    full = sweeper.launch(_curves(tmp_path, "full", pruner=None), results=tmp_path, backend="local")
    pruned = sweeper.launch(_curves(tmp_path, "pruned"), results=tmp_path, backend="local")
    assert set(full.table.status) == {"complete"}
    table = pruned.table
    assert (table.status == "pruned").any()
    # the same seeds give the same trials, so the two sweeps can be compared trial by trial
    assert (full.table.lr.values == table.lr.values).all()
    steps_full, steps_pruned = _steps(full), _steps(pruned)
    assert steps_pruned < 0.6 * steps_full, (steps_pruned, steps_full)
    best = full.best["trial"]
    assert set(table[table.trial == best].status) == {"complete"}
    assert pruned.best["trial"] == best
    # a pruned run ends with its last reported values
    h = sweeper.load_history(pruned.path)
    row = table[table.status == "pruned"].iloc[0]
    last = h[(h.trial == row.trial) & (h.replicate == row.replicate)].iloc[-1]
    assert row.test_mse == pytest.approx(last.test_mse)
    # the driver's study got pruned trials' curves (Optuna takes a pruned trial's last value)
    print(f"\nsteps run: {steps_full} without pruning, {steps_pruned} with the percentile pruner")


def test_pruning_decides_per_trial_over_replicates(tmp_path):
    run = sweeper.launch(_curves(tmp_path, "per_trial"), results=tmp_path, backend="local")
    table = run.table
    for trial, rows in table.groupby("trial"):
        statuses = set(rows.status)
        # once a trial is pruned, every replicate still running stops; an earlier one may have finished
        assert statuses <= {"complete", "pruned"}, (trial, statuses)
    pruned_trials = table[table.status == "pruned"].trial.unique()
    assert len(pruned_trials) >= 5


@pytest.mark.parametrize(
    "pruner",
    [
        {"method": "percentile", "percentile": 25.0, "n_startup_trials": 5, "n_warmup_steps": 2},
        {"method": "successive_halving", "min_resource": 2, "reduction_factor": 3},
        {"method": "hyperband", "min_resource": 2, "max_resource": 30, "reduction_factor": 3},
        {"method": "wilcoxon", "p_threshold": 0.1, "n_startup_steps": 3},
    ],
)
def test_every_pruner_prunes_obvious_losers(tmp_path, pruner):
    spec = _curves(tmp_path, f"p_{pruner['method']}", pruner=pruner, replicates=1)
    full = sweeper.launch(
        _curves(tmp_path, "f", pruner=None, replicates=1), results=tmp_path / "f", backend="local"
    )
    run = sweeper.launch(spec, results=tmp_path, backend="local")
    assert (run.table.status == "pruned").any()
    assert _steps(run) < _steps(full)


def test_hyperband_brackets_are_reproducible(tmp_path):
    pruner = {"method": "hyperband", "min_resource": 2, "max_resource": 30, "reduction_factor": 3}
    a = sweeper.launch(_curves(tmp_path, "hb", pruner=pruner), results=tmp_path / "a", backend="local")
    b = sweeper.launch(_curves(tmp_path, "hb", pruner=pruner), results=tmp_path / "b", backend="local")
    assert a.table.status.tolist() == b.table.status.tolist()


def test_should_prune_is_false_without_a_pruner(tmp_path):
    run = sweeper.launch(
        _curves(tmp_path, "none", pruner=None, replicates=1), results=tmp_path, backend="local"
    )
    assert set(run.table.status) == {"complete"}


@pytest.mark.parametrize(
    ("pruner", "message"),
    [
        ({"method": "meadian"}, "did you mean 'median'"),
        ({"method": "median", "n_warmup": 2}, "did you mean 'n_warmup_steps'"),
        ({"method": "percentile"}, "needs it"),
        ({"method": "median", "n_startup_trials": "five"}, "expected a finite number"),
    ],
)
def test_pruner_validation(tmp_path, pruner, message):
    with pytest.raises(SpecError, match=message):
        _curves(tmp_path, "bad", pruner=pruner)


def test_pruner_options_optuna_refuses_stop_the_launch(tmp_path):
    """Optuna's own checks (a percentile of 150) run at launch, before any run, with file and field."""
    spec = _curves(tmp_path, "bad", pruner={"method": "percentile", "percentile": 150})
    with pytest.raises(SpecError, match=r"pruner: Percentile must be between"):
        sweeper.launch(spec, results=tmp_path, backend="local")
    assert not (tmp_path / "bad").exists()


def test_pruner_refused_with_multi_objective_search(tmp_path):
    with pytest.raises(SpecError, match="multi-objective"):
        _curves(
            tmp_path,
            "bad",
            metrics=[{"test_mse": "minimize"}, {"slope": "minimize"}],
            search={"method": "nsga2", "trials": 4},
        )


@pytest.mark.timeout(180)
def test_pruning_on_ray_asks_the_monitor_actor(tmp_path, ray_session):
    (tmp_path / "ray_prune_obj.py").write_text(
        textwrap.dedent('''
        import time

        import sweeper


        def timed(lr, trial):
            """Bad trials (high lr) are obvious at once; the round trip of should_prune is timed."""
            spent, asked = 0.0, 0
            for step in range(20):
                trial.report(step, loss=lr + 1.0 / (step + 1))
                t = time.perf_counter()
                stop = trial.should_prune()
                spent += time.perf_counter() - t
                asked += 1
                if stop:
                    break
                time.sleep(0.01)
            return {"loss": lr + 1.0 / (step + 1), "ask_ms": 1000 * spent / asked}
    ''')
    )
    spec = sweeper.load_spec(
        {
            "experiment": "rayprune",
            "objective": "ray_prune_obj:timed",
            "metrics": [{"loss": "minimize"}, {"ask_ms": "minimize"}],
            "variables": {"lr": {"choice": [0.0, 0.1, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]}},
            "search": {"method": "grid"},
            "replicates": 2,
            "pruner": {"method": "median", "n_startup_trials": 1, "n_warmup_steps": 2},
        },
        root=tmp_path,
    )
    run = sweeper.launch(spec, results=tmp_path, backend="ray")
    table = run.table
    assert set(table[table.lr == 0.0].status) == {"complete"}
    assert (table.status == "pruned").sum() >= 6, table[["trial", "replicate", "status"]]
    h = sweeper.load_history(run.path)
    assert len(h) < 8 * 2 * 20
    assert (table.ask_ms > 0).all()  # every run asked; how long it takes: bench/prune_roundtrip.py


def test_resume_shows_the_pruner_the_trials_already_finished(tmp_path):
    first = sweeper.launch(
        _curves(tmp_path, "resumed", search={"method": "random", "trials": 8, "seed": 0}),
        results=tmp_path,
        backend="local",
    )
    assert len(first.table) == 16
    # 4 new trials: fewer than n_startup_trials (5), so only the 8 replayed trials let it prune
    more = sweeper.launch(
        _curves(tmp_path, "resumed", search={"method": "random", "trials": 12, "seed": 0}),
        results=tmp_path,
        backend="local",
    )
    new = more.table[more.table.trial >= 8]
    assert len(new) == 8
    assert (new.status == "pruned").any(), new[["trial", "lr", "status"]]


def test_the_drivers_study_gets_each_pruned_trials_curve(tmp_path, monkeypatch):
    from sweeper.search.searcher import Searcher

    studies, original = [], Searcher.report

    def keep(self, trial, curve):
        studies.append(self.study)
        return original(self, trial, curve)

    monkeypatch.setattr(Searcher, "report", keep)  # the real method still runs
    # tpe learns from the study (random search skips Optuna's study altogether)
    run = sweeper.launch(
        _curves(tmp_path, "study", replicates=1, search={"method": "tpe", "trials": 20}),
        results=tmp_path,
        backend="local",
    )
    import optuna

    study = studies[0]
    pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
    assert len(pruned) == (run.table.status == "pruned").sum() > 0
    h = sweeper.load_history(run.path)
    for t in pruned:
        curve = h[h.trial == t.number].set_index("step").test_mse.to_dict()
        assert t.intermediate_values == pytest.approx(curve)
        assert t.value == pytest.approx(curve[max(curve)])  # Optuna's value of a pruned trial
