"""``sweeper report``: the verdict, the summary table and the figures as ``report.md`` and a
self-contained ``index.html`` in ``DIR/report/``.

Order matters: the numbers are computed from the saved trial table and written first
(``summary.csv``, ``verdict.json``, ``stability.csv``, ``importance.json``) while the table's own
figures are drawn (:mod:`sweeper.report.drawing`), then the figures of those numbers, then the
pages. Nothing depends on the clock or on the sweep process, so the same table gives the same report,
and a sweep still running can be reported on at any time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.report.render import csv_text, json_text, render_html, render_markdown
from sweeper.report.sections import blocks

if TYPE_CHECKING:
    from sweeper.analysis import Verdict
    from sweeper.spec.experiment import Experiment

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


def write_report(path: str | os.PathLike[str], spec: Experiment | None = None) -> Report:
    """Compute, save, draw and render the report of a results folder into ``DIR/report/``.

    ``spec`` reports with another statement of the experiment than its ``experiment.json`` (a
    notebook's ``dataclasses.replace`` of it, e.g. another ``compare:``)."""
    import sweeper.analysis as analysis
    from sweeper.analysis.importance import importance
    from sweeper.report import drawing
    from sweeper.results.atomic import atomic_write_bytes
    from sweeper.results.history import load_history
    from sweeper.results.lock import is_locked
    from sweeper.results.status import state_of
    from sweeper.results.table import EXPERIMENT_JSON, load, read_record, read_spec

    folder = Path(path)
    out = folder / REPORT
    # the figures are drawn by a second process (started now: its imports overlap the reading) while the
    # values are computed; a small table is drawn here
    with drawing.figures(out) as draw:
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
        out.mkdir(parents=True, exist_ok=True)
        draw.table(df, history, spec)

        # 1. values, saved before the figures that show them
        verdict = analysis.hypothesis_verdict(df, spec)
        draw.verdict(verdict)  # its figures start while the rest is computed
        table = analysis.aggregate(df, spec)
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
                        {"branch": label, "trials": n, "importance": values}
                        for label, n, values in imp.branches
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
        # 2. the importance's figure, then every figure in page order
        figures = draw.done(imp)

    # 3. pages
    page = blocks(spec, meta, df, table, verdict, stab, imp, figures)
    _write_text(atomic_write_bytes, out / "report.md", render_markdown(page))
    _write_text(
        atomic_write_bytes,
        out / "index.html",
        render_html(page, title=f"sweeper report: {spec.name}", images=out),
    )
    return Report(out, verdict, tuple(name for name, _ in figures))


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
