"""`sweeper report` and `sweeper table` end to end on results folders written as the engine does."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import sweeper.analysis as analysis
from sweeper import load
from sweeper.cli import main
from sweeper.report.build import write_report
from sweeper.results.table import TableWriter, trial_schema
from sweeper.spec.model import load_spec
from tests.results_fixture import T0, model_rows, model_spec, seed_of, write_results

PNG = b"\x89PNG\r\n\x1a\n"


def history_for(rows, rng, steps=8):
    return [
        {
            "trial": r["trial"],
            "replicate": r["replicate"],
            "step": s,
            "accuracy": r["accuracy"] * (1 - np.exp(-s / 2)) + rng.normal(0, 0.003),
        }
        for r in rows
        for s in range(1, steps + 1)
    ]


@pytest.fixture
def rich(tmp_path):
    """Two metrics, a conditional variable, a history table and a real effect."""
    rng = np.random.default_rng(0)
    rows = model_rows(rng, effect=0.04, lrs=tuple(10 ** rng.uniform(-4, -1, 6)), extra_metric=True)
    return write_results(
        tmp_path / "rich", model_spec(extra_metric=True), rows, history=history_for(rows, rng)
    )


def test_report_writes_every_figure_and_self_contained_pages(rich):
    rep = write_report(rich)
    out = rich / "report"
    assert set(rep.figures) == {
        "arms.png",
        "variables.png",
        "history.png",
        "parallel.png",
        "learning_curves.png",
        "pareto.png",
        "importance.png",
    }
    for name in rep.figures:
        assert (out / name).read_bytes().startswith(PNG)
    page = (out / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(rep.figures)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch: opens from disk
    md = (out / "report.md").read_text()
    sentence = rep.verdict.sentence
    assert sentence.startswith("supported") and sentence in md
    assert "paired t-test" in md and "Why this test" in md
    for section in (
        "## Verdict",
        "## Summary",
        "### By model",
        "## Stability across seeds",
        "## Figures",
        "## Experiment",
        "## Environment",
    ):
        assert section in md
    assert "experiment: models" in md  # the spec
    assert "testhost" in md  # the environment
    saved = json.loads((out / "verdict.json").read_text())
    assert saved["supported"] is True and saved["test"] == "paired t-test"
    assert (out / "summary.csv").read_text().startswith("rank,trial,model,lr,depth,n,")
    imp = json.loads((out / "importance.json").read_text())
    assert imp["importance"]["model"] > imp["importance"]["lr"]
    assert imp["left_out"] == ["depth"]


def test_report_is_the_same_twice(rich):
    write_report(rich)
    first = {p.name: p.read_bytes() for p in (rich / "report").iterdir()}
    write_report(rich)
    second = {p.name: p.read_bytes() for p in (rich / "report").iterdir()}
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_report_of_a_sweep_still_running(tmp_path):
    """Parts not yet compacted, a trial with some replicates missing and one failed."""
    spec_dict = model_spec(replicates=4)
    folder = write_results(tmp_path / "running", spec_dict, [], status="running")
    writer = TableWriter(folder / "trials", trial_schema(load_spec(spec_dict)), flush_rows=3)
    rows = model_rows(np.random.default_rng(1), effect=0.05, replicates=4, lrs=(1e-3, 1e-2))
    rows = [r for r in rows if not (r["trial"] == 3 and r["replicate"] >= 2)]
    filled = []
    for i, r in enumerate(rows):
        filled.append(
            {
                **r,
                "seed": seed_of(r["replicate"]),
                "attempt": 0,
                "duration_s": 1.0,
                "started_at": T0,
                "ended_at": T0,
                "node": "n0",
                "status": "failed" if i == 0 else "complete",
                "error": "boom" if i == 0 else None,
                "accuracy": None if i == 0 else r["accuracy"],
            }
        )
    for i in range(0, len(filled), 3):  # several parts, no close(): the sweep is "running"
        writer.append(filled[i : i + 3])
    assert len(list((folder / "trials").glob("part-*.parquet"))) > 1
    from sweeper.results.lock import DriverLock

    lock = DriverLock(folder).acquire()  # a live driver: without one, "running" reads "crashed"
    try:
        rep = write_report(folder)
    finally:
        lock.release()
    md = rep.markdown.read_text()
    assert "status is **running**" in md and "1 failed" in md
    assert rep.verdict is not None and rep.verdict.main.n >= 2


def test_report_without_compare_history_or_second_metric(tmp_path):
    spec_dict = model_spec()
    del spec_dict["compare"]
    spec_dict["variables"]["model"] = {"choice": ["custom", "resnet50"]}  # the example comes from here
    folder = write_results(
        tmp_path / "plain", spec_dict, model_rows(np.random.default_rng(2), effect=0.0, lrs=(1e-3, 1e-2))
    )
    rep = write_report(folder)
    assert rep.verdict is None
    assert {"arms.png", "pareto.png", "learning_curves.png"}.isdisjoint(rep.figures)
    assert not (folder / "report" / "verdict.json").exists()
    md = rep.markdown.read_text()
    assert "states no `compare:`" in md
    assert "add e.g. `compare: {variable: model, treatment: resnet50, baseline: custom}`" in md  # its own


def test_report_with_one_replicate_warns_instead_of_testing(tmp_path):
    folder = write_results(
        tmp_path / "single",
        model_spec(replicates=1),
        model_rows(np.random.default_rng(3), effect=0.05, replicates=1, lrs=(1e-3, 1e-2)),
    )
    rep = write_report(folder)
    main_ = rep.verdict.main
    assert not rep.verdict.supported and main_.test == "none"
    assert any("no test is possible" in w for w in main_.warnings)
    assert "Fewer than 2 shared seeds" in rep.markdown.read_text()


def test_a_report_of_100_trials_shows_the_top_20_and_keeps_all_in_summary_csv(tmp_path):
    # how long it takes is bench/report_scale.py's to measure, not a test's
    rng = np.random.default_rng(4)
    rows = model_rows(rng, effect=0.02, replicates=3, lrs=tuple(10 ** rng.uniform(-4, -1, 100)))
    folder = write_results(tmp_path / "big", model_spec(replicates=3), rows)
    write_report(folder)
    md = (folder / "report" / "report.md").read_text()
    trials = len({(r["model"], r["lr"]) for r in rows})
    assert f"top 20 of {trials} shown, all in `summary.csv`" in md
    summary = (folder / "report" / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + trials


def test_cli_table_formats(rich, capsys):
    assert main(["table", str(rich), "--format", "csv"]) == 0
    csv = capsys.readouterr().out
    assert csv.startswith("rank,trial,model,lr,depth,n,accuracy_mean")
    assert main(["table", str(rich), "--by", "model", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in rows] == ["custom", "resnet50"]
    assert main(["table", str(rich), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("| rank | trial | model |")
    assert main(["table", str(rich)]) == 0
    assert "accuracy_mean" in capsys.readouterr().out
    assert main(["table", str(rich), "--by", "nope"]) == 2
    assert "not a variable" in capsys.readouterr().err
    assert main(["table", str(rich), "--top", "2", "--format", "csv"]) == 0
    top = capsys.readouterr()
    assert [line.split(",")[0] for line in top.out.splitlines()] == ["rank", "1", "2"]
    assert top.err.startswith("(2 of ") and "rows shown: the best by the primary metric)" in top.err


def test_cli_report_and_json(rich, capsys):
    assert main(["report", str(rich)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("supported at") and "index.html" in out
    assert main(["report", str(rich), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("supported", "effect", "ci_low", "ci_high", "p_value", "test", "n"):
        assert key in data
    assert data["supported"] is True and data["ci_low"] > 0
    assert data == json.loads(json.dumps(analysis.verdict(rich).to_dict()))


def test_learning_curves_use_the_last_attempt_of_a_retried_run(tmp_path):
    from sweeper import load_history
    from sweeper.report.figures import last_attempt, learning_curves

    spec_dict = model_spec(replicates=2)
    rows = model_rows(np.random.default_rng(5), effect=0.0, replicates=2)
    good = [{"trial": 0, "replicate": 0, "attempt": 1, "step": s, "accuracy": 0.1 * s} for s in range(1, 4)]
    lost = [{"trial": 0, "replicate": 0, "attempt": 0, "step": s, "accuracy": 99.0} for s in range(1, 3)]
    other = [{"trial": 1, "replicate": 1, "step": s, "accuracy": 0.2 * s} for s in range(1, 4)]
    folder = write_results(tmp_path / "retry", spec_dict, rows, history=lost + good + other)
    hist = load_history(folder)
    kept = last_attempt(hist)
    assert len(kept) == 6 and 99.0 not in kept["accuracy"].tolist()
    out = learning_curves(hist, load(folder), load_spec(spec_dict), tmp_path / "lc.png")
    assert out is not None and out.read_bytes().startswith(PNG)


def test_report_on_a_real_sweep(tmp_path, capsys):
    """The quickstart, run by the engine in-process, then reported on: the table contract end to end."""
    from pathlib import Path

    import sweeper

    sweep = Path(__file__).resolve().parents[2] / "sweeps" / "quickstart.yaml"
    result = sweeper.launch(sweep, results=tmp_path, backend="local")
    rep = write_report(result.path)
    assert {
        "arms.png",
        "variables.png",
        "history.png",
        "parallel.png",
        "importance.png",
        "pareto.png",
    } <= set(rep.figures)
    v = rep.verdict
    assert v is not None and v.variable == "optimizer" and v.main.treatment == "momentum"
    assert v.main.test == "paired t-test" and v.main.n == 3
    assert any("too small" in w for w in v.main.warnings)  # 3 replicates
    assert main(["report", str(result.path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["n"] == 3 and data["supported"] == v.supported


def test_report_when_every_run_failed(tmp_path):
    rows = model_rows(np.random.default_rng(6), effect=0.0, lrs=(1e-3, 1e-2))
    for r in rows:
        r.update(status="failed", accuracy=None, error="Traceback: boom")
    rep = write_report(write_results(tmp_path / "failed", model_spec(), rows))
    assert rep.figures == ()
    assert not rep.verdict.supported and "no finished replicates" in rep.verdict.sentence
    assert any("error column" in w for w in rep.verdict.main.warnings)
    assert "20 failed" in rep.markdown.read_text()
