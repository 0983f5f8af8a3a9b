"""``sweeper report``: the verdict, the summary table and the figures as ``report.md`` and a
self-contained ``index.html`` in ``DIR/report/``.

Order matters: the numbers are computed from the saved trial table and written first
(``summary.csv``, ``verdict.json``, ``stability.csv``, ``importance.json``), then the figures are
drawn, then the pages. Nothing depends on the clock or on the sweep process, so the same table
gives the same report, and a sweep still running can be reported on at any time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.report.render import csv_text, json_text, render_html, render_markdown
from sweeper.report.sections import blocks
from sweeper.results.values import raced

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis import Verdict
    from sweeper.spec.model import Experiment

REPORT = "report"


@dataclass(frozen=True, slots=True)
class Report:
    folder: Path  # DIR/report
    verdict: Verdict | None
    figures: tuple[str, ...]  # PNG file names in folder

    @property
    def html(self) -> Path:
        return self.folder / "index.html"

    @property
    def markdown(self) -> Path:
        return self.folder / "report.md"


# ---------------------------------------------------------------- the report


def write_report(path: str | Path, spec: Experiment | None = None) -> Report:
    """Compute, save, draw and render the report of a results folder into ``DIR/report/``.

    ``spec`` reports with another statement of the experiment than its ``experiment.json`` (a
    notebook's ``dataclasses.replace`` of it, e.g. another ``compare:``)."""
    import sweeper.analysis as analysis
    from sweeper.analysis.importance import importance
    from sweeper.report import figures as plots
    from sweeper.results.history import load_history
    from sweeper.results.lock import is_locked
    from sweeper.results.status import state_of
    from sweeper.results.table import (
        EXPERIMENT_JSON,
        atomic_write_bytes,
        load,
        read_record,
        read_spec,
    )

    folder = Path(path)
    spec = spec or read_spec(folder)
    alive = is_locked(folder)
    meta = read_record(folder / EXPERIMENT_JSON)
    meta = {**meta, "status": state_of(meta, alive)}  # "crashed", as sweeper status says
    df = load(folder)
    if df.empty:
        raise SweeperError(
            f"{folder}: the trial table is empty; nothing to report yet "
            "(reports work mid-sweep once the first runs have finished)"
        )
    history = load_history(folder)
    out = folder / REPORT
    out.mkdir(parents=True, exist_ok=True)

    # 1. values, saved before anything is drawn
    table = analysis.aggregate(df, spec)
    verdict = analysis.hypothesis_verdict(df, spec)
    stab = analysis.stability(df, spec)
    imp = importance(df, spec)
    _write_text(atomic_write_bytes, out / "summary.csv", csv_text(table))
    _write_text(atomic_write_bytes, out / "stability.csv", csv_text(stab.table))
    _write_text(
        atomic_write_bytes,
        out / "importance.json",
        json.dumps(
            {
                "metric": spec.primary.name,
                "method": imp.method,
                "trials": imp.trials,
                "importance": imp.values,
                "left_out": list(imp.left_out),
                "note": imp.note,
                "branches": [
                    {"branch": label, "trials": n, "importance": values} for label, n, values in imp.branches
                ],
            },
            indent=2,
        )
        + "\n",
    )
    if verdict is not None:
        _write_text(
            atomic_write_bytes,
            out / "verdict.json",
            json_text(verdict.to_dict()) + "\n",
        )

    # 2. figures from those values and the table
    figures: list[tuple[str, str]] = []

    def draw(name: str, caption: str, made: Path | None) -> None:
        if made is not None:
            figures.append((name, caption))
        else:
            (out / name).unlink(missing_ok=True)

    if verdict is not None and (verdict.within or verdict.stage == analysis.CONFIRM):
        _compare_figures(verdict, out, draw)
    elif verdict is not None:
        draw(
            "arms.png",
            f"{verdict.metric} per seed in each arm of the comparison (lines join "
            "replicates that share a seed).",
            plots.arm_spread(
                raced(analysis.stage_rows(df), spec, (verdict.variable,)), verdict, out / "arms.png"
            ),
        )
    few, shown, of = thin(analysis.stage_rows(df), spec)  # 200,000 trials' dots: minutes, and a blot
    drawn = f" ({shown:,} of {of:,} trials drawn: a seeded sample plus every new best and the top trials)"
    draw(
        "variables.png",
        f"{spec.primary.name} against each variable: grey dots are replicates, blue the trial mean ± sd."
        + (drawn if shown < of else ""),
        plots.metric_vs_variables(few, spec, out / "variables.png"),
    )
    draw(
        "history.png",
        "Optimisation history: trial means in trial order and the best so far."
        + (drawn if shown < of else ""),
        plots.optimisation_history(few, spec, out / "history.png"),
    )
    draw(
        "parallel.png",
        "Parallel coordinates of the top trials, coloured by the primary metric.",
        plots.parallel_coordinates(df, spec, out / "parallel.png"),
    )
    draw(
        "learning_curves.png",
        "Learning curves from the history table: mean over replicates "
        "(band: their range); grey: other finished trials; dashed: trials stopped early.",
        plots.learning_curves(history, df, spec, out / "learning_curves.png"),
    )
    draw(
        "pareto.png",
        "Pareto front of the first two metrics (trial means)." + (drawn if shown < of else ""),
        plots.pareto_front(few, spec, out / "pareto.png"),
    )
    draw(
        "importance.png",
        f"Variable importance: Optuna's {imp.method} on the study rebuilt "
        "from the table (target: trial mean of the primary metric); conditional variables are "
        "weighed inside each branch where they are active.",
        plots.importance_bars(imp, spec.primary.name, out / "importance.png"),
    )

    # 3. pages
    page = blocks(spec, meta, df, table, verdict, stab, imp, figures)
    _write_text(atomic_write_bytes, out / "report.md", render_markdown(page))
    _write_text(
        atomic_write_bytes,
        out / "index.html",
        render_html(page, title=f"sweeper report: {spec.name}", images=out),
    )
    return Report(out, verdict, tuple(name for name, _ in figures))


PLOTTED = 1000  # trials the scatter figures draw at most (points past it cost time, not information)


def thin(
    df: pd.DataFrame, spec: Experiment, limit: int = PLOTTED, seed: int = 0
) -> tuple[pd.DataFrame, int, int]:
    """The rows of at most about ``limit`` trials for the scatter figures, and (trials kept, trials):
    a seeded sample, plus every trial that set a new best in trial order (so the best-so-far line is
    exact) and the 50 best."""
    import numpy as np

    ids = np.unique(df["trial"].to_numpy())
    if len(ids) <= limit:
        return df, len(ids), len(ids)
    metric = spec.primary.name
    means = df[df["status"] == "complete"].groupby("trial")[metric].mean().dropna()
    sign = 1.0 if spec.primary.direction == "maximize" else -1.0
    scored = sign * means.to_numpy()
    records = means.index[scored >= np.maximum.accumulate(scored)]
    best = means.index[np.argsort(-scored, kind="stable")[:50]]
    sample = np.random.default_rng(seed).choice(ids, limit, replace=False)
    keep = np.union1d(np.union1d(sample, records.to_numpy()), best.to_numpy())
    return df[df["trial"].isin(keep)], len(keep), len(ids)


def _compare_figures(verdict: Verdict, out: Path, draw: Any) -> None:
    """The figures of a comparison over settings or with a confirmation stage."""
    from sweeper.report import figures_compare as fc

    draw(
        "effects.png",
        f"Effect on {verdict.metric} (treatment - baseline) in each setting with its CI"
        + ("; the shaded band is the ROPE." if verdict.rope is not None else "."),
        fc.setting_effects(verdict, out / "effects.png"),
    )
    if verdict.across is not None:
        draw(
            "cd.png",
            "Critical-difference diagram (Demšar 2006): average rank of each arm over the settings; "
            "arms joined by a thick bar differ by less than the Nemenyi critical difference.",
            fc.cd_diagram(verdict.across, out / "cd.png"),
        )
    draw(
        "confirm.png",
        "Each arm's search-stage estimate (its best trial on the search's seeds) and its mean on the "
        "confirmation stage's fresh seeds: the gap is the winner's curse.",
        fc.search_vs_confirm(verdict, out / "confirm.png"),
    )


def _write_text(write: Any, path: Path, text: str) -> None:
    write(path, text.encode("utf-8"))


def verdict_json(path: str | Path) -> dict[str, Any]:
    """``sweeper report DIR --json``: the verdict as a dict (``supported`` None without one)."""
    from sweeper.analysis import verdict

    v = verdict(path)
    if v is None:
        return {
            "supported": None,
            "effect": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "test": None,
            "n": None,
            "note": "the sweep file states no compare:, so there is no hypothesis to test",
        }
    return v.to_dict()
