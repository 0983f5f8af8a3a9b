"""``sweeper report``: the verdict, the summary table and the figures as ``report.md`` and a
self-contained ``index.html`` in ``DIR/report/``.

Order matters: the numbers are computed from the saved trial table and written first
(``summary.csv``, ``verdict.json``, ``stability.csv``, ``importance.json``), then the figures are
drawn, then the pages. Nothing depends on the clock or on the sweep process, so the same table
gives the same report, and a sweep still running can be reported on at any time.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.results.values import raced

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis import Stability, Verdict
    from sweeper.analysis.importance import Importance
    from sweeper.spec.model import Experiment

REPORT = "report"
FORMATS = ("table", "csv", "markdown", "json")
SUMMARY_ROWS = 20  # rows of the summary table in the pages; summary.csv holds them all
LISTED = 100  # trials indistinguishable from the best named in the pages; verdict.json holds them all

# ("h2", text) ("p", text) ("ul", [text]) ("table", DataFrame) ("img", (file, caption)) ...
Block = tuple[str, Any]  # ... ("code", text) ("quote", text) ("verdict", (supported, sentence))


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


# ---------------------------------------------------------------- tables as text


def fmt_number(x: Any) -> str:
    """Four significant digits, integers as they are, missing values as an empty cell."""
    import numbers

    import pandas as pd

    if x is None or isinstance(x, str):
        return x or ""
    if isinstance(x, bool) or type(x).__name__ == "bool_":
        return str(bool(x))
    if not isinstance(x, list | tuple | dict) and pd.isna(x):
        return ""
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        x = float(x)
        if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
            return f"{x:.3e}"
        return f"{x:.4g}"
    return str(x)


def markdown_table(df: pd.DataFrame) -> str:
    def cell(x: Any) -> str:
        return fmt_number(x).replace("|", "\\|").replace("\n", " ")

    head = "| " + " | ".join(cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(x) for x in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def csv_text(df: pd.DataFrame) -> str:
    """A table as CSV, the body written by Arrow's C++ writer (10x pandas' ``to_csv`` on 200,000 rows,
    which formats every float from Python-driven chunks). Quotes only where a value needs them, as
    pandas does; True/False as pandas writes them; pandas again for what Arrow cannot type."""
    import csv
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    flags = [c for c in df.columns if df[c].dtype == bool]
    body = df.assign(**{c: df[c].map({True: "True", False: "False"}) for c in flags}) if flags else df
    try:
        table = pa.Table.from_pandas(body, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return str(df.to_csv(index=False))
    out = io.BytesIO()
    for quoting in ("none", "needed"):  # "none" fails on a value holding a comma, quote or newline
        try:
            out = io.BytesIO()
            pacsv.write_csv(table, out, pacsv.WriteOptions(include_header=False, quoting_style=quoting))
            break
        except pa.ArrowInvalid:
            continue
    head = io.StringIO()
    csv.writer(head, lineterminator="\n").writerow([str(c) for c in df.columns])
    return head.getvalue() + out.getvalue().decode("utf-8")


def format_table(df: pd.DataFrame, fmt: str = "table") -> str:
    """The summary table as text: an aligned table, CSV, Markdown or JSON records."""
    if fmt == "csv":
        return csv_text(df)
    if fmt == "json":
        return str(df.to_json(orient="records", indent=1, double_precision=15)) + "\n"
    if fmt == "markdown":
        return markdown_table(df) + "\n"
    if fmt == "table":
        text = df.astype(object).map(fmt_number)
        return str(text.to_string(index=False)) + "\n"
    raise SweeperError(f"--format {fmt!r} is unknown\n  fix: use one of {', '.join(FORMATS)}")


def display_summary(table: pd.DataFrame, spec: Experiment, rows: int = SUMMARY_ROWS) -> pd.DataFrame:
    """The summary table for people: metric as mean ± sd and the 95% CI in one column each."""
    import pandas as pd

    keep = [c for c in table.columns if not any(c.startswith(f"{m.name}_") for m in spec.metrics)]
    out = table[keep].head(rows).copy()
    for m in spec.metrics:
        if f"{m.name}_mean" not in table.columns:
            continue
        t = table.head(rows)
        out[f"{m.name} (mean ± sd)"] = [
            f"{fmt_number(a)} ± {fmt_number(s)}" if not pd.isna(s) else fmt_number(a)
            for a, s in zip(t[f"{m.name}_mean"], t[f"{m.name}_std"], strict=True)
        ]
        out[f"{m.name} 95% CI"] = [
            f"[{fmt_number(lo)}, {fmt_number(hi)}]" if not pd.isna(lo) else ""
            for lo, hi in zip(t[f"{m.name}_ci_low"], t[f"{m.name}_ci_high"], strict=True)
        ]
    return out


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
    blocks = _blocks(spec, meta, df, table, verdict, stab, imp, figures)
    _write_text(atomic_write_bytes, out / "report.md", render_markdown(blocks))
    _write_text(
        atomic_write_bytes,
        out / "index.html",
        render_html(blocks, title=f"sweeper report: {spec.name}", images=out),
    )
    return Report(out, verdict, tuple(name for name, _ in figures))


def json_text(record: dict[str, Any]) -> str:
    """``json.dumps(record, indent=2)``, but a long list (200,000 trials indistinguishable from the best)
    on one line by the C encoder: the indenting encoder is pure Python, seconds for such a list."""
    long = {k: v for k, v in record.items() if isinstance(v, list) and len(v) > LONG_LIST}
    marks = {k: f"\x00{k}\x00" for k in long}
    text = json.dumps({**record, **marks}, indent=2, ensure_ascii=False)
    for k, mark in marks.items():
        text = text.replace(json.dumps(mark, ensure_ascii=False), json.dumps(long[k], ensure_ascii=False))
    return text


LONG_LIST = 1000  # items past which a list of verdict.json is written on one line
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


def power_cell(main: Any) -> str:
    """Replicates per arm for 80% power at the observed effect, or why there is no such number."""
    import math

    if main.n_needed is not None:
        return str(main.n_needed)
    if main.test == "none" or not math.isfinite(main.effect):
        return f"n/a: no test was run ({main.reason})"
    if main.effect == 0:
        return "n/a: the observed effect is 0, and no number of replicates detects an effect of 0"
    if not math.isfinite(main.cohen_d):
        return "n/a: the replicates do not vary, so the spread to size a sample from is 0"
    return "more than 10,000 (the effect is tiny next to the seed-to-seed spread)"


def _interval(low: float, high: float) -> str:
    return f"[{fmt_number(low)}, {fmt_number(high)}]" if fmt_number(low) else ""


def _write_text(write: Any, path: Path, text: str) -> None:
    write(path, text.encode("utf-8"))


def _blocks(
    spec: Experiment,
    meta: dict[str, Any],
    df: pd.DataFrame,
    table: pd.DataFrame,
    verdict: Verdict | None,
    stab: Stability,
    imp: Importance,
    figures: list[tuple[str, str]],
) -> list[Block]:
    import pandas as pd
    import yaml

    from sweeper.analysis import ALPHA

    counts = df["status"].value_counts().to_dict() if "status" in df.columns else {}
    status = meta.get("status", "unknown")
    b: list[Block] = [("h1", f"Report: {spec.name}")]
    if spec.hypothesis:
        b.append(("quote", f"Hypothesis: {spec.hypothesis}"))
    runs = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    line = (
        f"{df['trial'].nunique()} trials, {len(df)} runs ({runs}); "
        f"{spec.replicates} replicate(s) per trial; search: {spec.search.method}."
    )
    if status not in ("finished", "complete"):
        line += (
            f" The sweep's status is **{status}**: this report covers the runs finished so "
            "far; run `sweeper report` again for an update."
        )
    b.append(("p", line))

    b.append(("h2", "Verdict"))
    if verdict is None:
        b.append(
            (
                "p",
                "The sweep file states no `compare:`, so there is no hypothesis test; add "
                "e.g. `compare: {variable: model, treatment: custom, baseline: resnet50}`.",
            )
        )
    else:
        main = verdict.main
        b.append(("verdict", (verdict.supported, verdict.sentence)))
        rows = [
            ("effect (treatment - baseline)", fmt_number(main.effect)),
            (f"{100 * (1 - verdict.alpha):g}% CI", _interval(main.ci_low, main.ci_high)),
            (
                "Cohen's d" + (" (d_z, on the paired differences)" if main.paired else ""),
                fmt_number(main.cohen_d),
            ),
            (
                "p-value",
                fmt_number(main.p_value)
                + (f" (Holm-adjusted {fmt_number(main.p_adjusted)})" if verdict.holm else ""),
            ),
            ("test", main.test),
            ("n (seeds compared)", str(main.n)),
            (ALPHA, f"{verdict.alpha:g}"),
            ("replicates for 80% power", power_cell(main)),
        ]
        if main.treatment_trial is not None:
            rows.append(
                (
                    "trials compared",
                    f"{main.treatment} = trial {main.treatment_trial}, "
                    f"{main.baseline} = trial {main.baseline_trial}",
                )
            )
        b.append(("table", pd.DataFrame(rows, columns=["", "value"])))
        if main.rope is not None:
            r = main.rope
            rows.append(
                (
                    f"Bayesian correlated t-test (ROPE ±{r.rope:g}, correlation {r.correlation:g})",
                    f"P(effect < -{r.rope:g}) = {fmt_number(r.below)}, P(inside) = {fmt_number(r.inside)}, "
                    f"P(> {r.rope:g}) = {fmt_number(r.above)}",
                )
            )
            b[-1] = ("table", pd.DataFrame(rows, columns=["", "value"]))
        b.append(("p", f"**Why this test:** {main.reason}."))
        b.append(("p", f"**Arms:** {verdict.arms_note}"))
        warns = list(main.warnings) + list(verdict.notes)
        if warns:
            b.append(("ul", [f"⚠ {w}" for w in warns]))
        b.extend(_comparison_blocks(verdict))
        if len(verdict.comparisons) > 1 and not verdict.within:
            b.append(("h3", "Every arm against the baseline"))
            b.append(
                (
                    "table",
                    pd.DataFrame(
                        [
                            {
                                "treatment": c.treatment,
                                "supported": c.supported,
                                "effect": c.effect,
                                "CI": _interval(c.ci_low, c.ci_high),
                                "p": c.p_value,
                                "p (Holm)": c.p_adjusted,
                                "test": c.test,
                                "n": c.n,
                            }
                            for c in verdict.comparisons
                        ]
                    ),
                )
            )
        if verdict.best_trial is not None:
            ids = verdict.indistinguishable
            same = ", ".join(str(t) for t in ids[:LISTED]) or "none"
            if len(ids) > LISTED:
                same += f" and {len(ids) - LISTED:,} more (`verdict.json` lists them all)"
            others = df["trial"].nunique() - 1
            b.append(
                (
                    "p",
                    f"**Indistinguishable from the best trial ({verdict.best_trial})** "
                    f"on {verdict.metric} (paired t-tests, Holm-corrected over {others} "
                    f"comparisons, {ALPHA} = {verdict.alpha:g}): {same}. This screen is "
                    "corrected for every trial it compares, so it is more cautious than the "
                    "single planned comparison above.",
                )
            )

    b.append(("h2", "Summary"))
    shown = min(SUMMARY_ROWS, len(table))
    b.append(
        (
            "p",
            f"One row per trial, ranked on {spec.primary.name} ({spec.primary.direction}); "
            f"top {shown} of {len(table)} shown, all in `summary.csv`. CIs are Student-t "
            "intervals of the mean over replicates.",
        )
    )
    b.append(("table", display_summary(table, spec)))
    if verdict is not None:
        from sweeper.analysis import aggregate

        b.append(("h3", f"By {verdict.variable}"))
        b.append(
            (
                "p",
                f"Every finished replicate of each level pooled over the other variables "
                f"(`sweeper table DIR --by {verdict.variable}`): how the levels fare across the "
                "whole explored space, not only at their best trial. Its CIs treat every "
                "replicate as independent (they share seeds and trials): a guide, not a test.",
            )
        )
        b.append(("table", display_summary(aggregate(df, spec, by=[verdict.variable]), spec)))

    b.append(("h2", "Stability across seeds"))
    st = stab.table.head(SUMMARY_ROWS)
    if stab.seeds >= 2:
        flips = int(stab.table["flips"].sum())
        best_on = stab.table["best_on"].iloc[0]
        b.append(
            (
                "p",
                f"Over {stab.seeds} seeds that every one of the top {stab.top} trials "
                f"finished, {flips} of them change rank from seed to seed; the best trial is "
                f"first on {fmt_number(100 * best_on)}% of seeds. Kendall's W (agreement of the "
                f"per-seed rankings, 1 = identical) = {fmt_number(stab.kendall_w)}. cv is the "
                "coefficient of variation (sd / |mean|) across seeds.",
            )
        )
    else:
        b.append(
            (
                "p",
                "Fewer than 2 shared seeds: no ranking stability to measure (set "
                "replicates: 3 or more). cv is sd / |mean| across seeds.",
            )
        )
    b.append(("table", st))
    b.extend(_seed_factor_blocks(df, spec))

    b.append(("h2", "Figures"))
    for name, caption in figures:
        b.append(("img", (name, caption)))
    if imp.note:
        b.append(("p", f"Variable importance: {imp.note}."))

    b.append(("h2", "Experiment"))
    spec_text = yaml.safe_dump(meta.get("spec", dict(spec.raw)), sort_keys=False, allow_unicode=True)
    b.append(("code", spec_text))
    b.append(("h2", "Environment"))
    env = [
        ("status", status),
        ("created", meta.get("created_at", "")),
        ("updated", meta.get("updated_at", "")),
        ("host", meta.get("host", "")),
        ("git commit", meta.get("git_commit") or ""),
    ]
    env += [(k, v) for k, v in sorted((meta.get("versions") or {}).items())]
    b.append(("table", pd.DataFrame(env, columns=["", "value"])))
    return b


def _comparison_blocks(verdict: Verdict) -> list[Block]:
    """Across settings, the cost side, and search vs confirmation: the sections issue 13 adds."""
    import pandas as pd

    from sweeper.analysis.across import NORMALISATION

    b: list[Block] = []
    if verdict.within:
        b.append(("h3", f"Each setting of {', '.join(verdict.within)}"))
        b.append(("table", _comparison_table(verdict.comparisons, verdict.rope is not None)))
    a = verdict.across
    if a is not None:
        b.append(("h3", "Across settings"))
        b.append(("verdict", (a.supported, a.sentence)))
        test = (
            f"Wilcoxon signed-rank test over the {a.n_settings} settings' normalised effects "
            f"(W = {fmt_number(a.statistic)}, p = {fmt_number(a.p_value)}); sign test: better on "
            f"{a.better} of {a.n_settings} (p = {fmt_number(a.sign_p)})"
            if a.test != "Friedman"
            else f"Friedman test over the arms' ranks in {a.n_settings} settings "
            f"(chi² = {fmt_number(a.statistic)}, p = {fmt_number(a.p_value)}), Nemenyi critical difference "
            f"{fmt_number(a.cd)} of average ranks, and Holm-corrected comparisons with {a.baseline}"
        )
        b.append(("p", f"**Test:** {test}. Aggregates as rliable computes them: {NORMALISATION}."))
        b.append(
            (
                "table",
                pd.DataFrame(
                    [
                        {
                            "arm": g.arm,
                            "IQM (normalised)": g.iqm,
                            "95% CI (stratified bootstrap)": _interval(g.ci_low, g.ci_high),
                        }
                        for g in a.iqm
                    ]
                    + [
                        {
                            "arm": f"P({a.treatment} > {a.baseline})",
                            "IQM (normalised)": a.poi,
                            "95% CI (stratified bootstrap)": _interval(a.poi_low, a.poi_high),
                        }
                    ]
                ),
            )
        )
        if a.posthoc:
            b.append(
                (
                    "table",
                    pd.DataFrame(
                        [
                            {
                                "arm": a.baseline,
                                "average rank": dict(a.ranks)[a.baseline],
                                "z": None,
                                "p": None,
                                "p (Holm)": None,
                            }
                        ]
                        + [
                            {
                                "arm": p.arm,
                                "average rank": p.rank,
                                "z": p.z,
                                "p": p.p_value,
                                "p (Holm)": p.p_holm,
                            }
                            for p in a.posthoc
                        ]
                    ),
                )
            )
        if a.notes:
            b.append(("ul", [f"⚠ {n}" for n in a.notes]))
    if verdict.costs:
        b.append(("h3", "Cost: the other metrics, same arms, same pairing"))
        b.append(
            (
                "p",
                "Positive metrics are compared as the geometric-mean ratio treatment / baseline (a "
                "t-interval on the paired log ratios), others as mean differences; `duration_s` stands in "
                "when the sweep records no other metric.",
            )
        )
        b.append(
            (
                "table",
                pd.DataFrame(
                    [
                        {
                            "metric": c.metric,
                            "treatment": c.treatment_mean,
                            "baseline": c.baseline_mean,
                            "ratio" if c.ratio else "difference": c.estimate,
                            "CI": _interval(c.ci_low, c.ci_high),
                            "p": c.p_value,
                            "significant": c.significant,
                            "n": c.n,
                        }
                        for c in verdict.costs
                    ]
                ),
            )
        )
    if verdict.search:
        b.append(("h3", "Search stage vs confirmation (the winner's curse, measured)"))
        confirmed = {(c.setting, c.treatment): c for c in verdict.comparisons}
        rows = []
        for s in verdict.search:
            c = confirmed.get((s.setting, s.treatment))
            if c is None:
                continue
            rows.append(
                {
                    "setting": s.setting,
                    "treatment": s.treatment,
                    "search: treatment": s.treatment_mean,
                    "confirm: treatment": c.treatment_mean,
                    "search: baseline": s.baseline_mean,
                    "confirm: baseline": c.baseline_mean,
                    "search effect": s.effect,
                    "confirmed effect": c.effect,
                    "confirmed CI": _interval(c.ci_low, c.ci_high),
                    "search verdict": s.outcome,
                    "confirmed verdict": c.outcome,
                }
            )
        b.append(("table", pd.DataFrame(rows)))
    return b


def _comparison_table(comparisons: Any, rope: bool) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for c in comparisons:
        row = {
            "setting": c.setting,
            "treatment": c.treatment,
            "verdict": c.outcome,
            "effect": c.effect,
            "CI": _interval(c.ci_low, c.ci_high),
            "p": c.p_value,
            "p (Holm)": c.p_adjusted,
            "test": c.test,
            "n": c.n,
        }
        if rope and c.rope is not None:
            row["P(inside ROPE)"] = c.rope.inside
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- renderers


def _seed_factor_blocks(df: pd.DataFrame, spec: Experiment) -> list[Block]:
    """Seed factors (replicates: {data: 5, init: 2}): which perturbation moves the result."""
    import pandas as pd

    from sweeper.analysis.variance import decompose

    dec = decompose(df, spec)
    if dec is None:
        return []
    out: list[Block] = [("h2", "Which seed moves the result")]
    if dec.per_trial.empty:
        return [*out, ("p", "No trial has a complete factorial of finished replicates yet.")]
    skipped = f" {dec.skipped} trials without every cell finished are left out." if dec.skipped else ""
    out.append(
        (
            "p",
            f"{dec.sentence} Random-effects ANOVA on the crossed design, per trial; the seed-to-seed"
            f" variance of {spec.primary.name} is split into each factor's share and a residual.{skipped}",
        )
    )
    pooled = [
        (k, fmt_number(v), f"{fmt_number(100 * s)} %")
        for (k, v), s in zip(dec.pooled.items(), dec.shares().values(), strict=True)
    ]
    out.append(("table", pd.DataFrame(pooled, columns=["component", "variance", "share"])))
    out.append(("table", dec.per_trial.head(SUMMARY_ROWS)))
    return out


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append("#" * int(kind[1]) + " " + body)
        elif kind == "p":
            out.append(body)
        elif kind == "quote":
            out.append("> " + body)
        elif kind == "verdict":
            out.append(f"**{body[1]}**")
        elif kind == "ul":
            out.append("\n".join(f"- {x}" for x in body))
        elif kind == "table":
            out.append(markdown_table(body))
        elif kind == "img":
            out.append(f"![{body[1]}]({body[0]})\n\n*{body[1]}*")
        elif kind == "code":
            out.append("```yaml\n" + body.rstrip() + "\n```")
    return "\n\n".join(out) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
blockquote{border-left:4px solid #999;margin:0;padding:.2em 1em;color:#444;font-style:italic}
.verdict{padding:.8em 1em;border-radius:6px;font-weight:600;font-size:1.05em}
.yes{background:#e6f4ea;border:1px solid #34a853}.no{background:#fdecea;border:1px solid #d93025}
figure{margin:1.2em 0}figcaption{color:#555;font-size:.9em}img{max-width:100%}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
"""


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the blocks use: **bold** and `code`."""
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", t)


def html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(fmt_number(x))}</td>" for x in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def render_html(blocks: list[Block], *, title: str, images: Path) -> str:
    """One file, images embedded as data URIs, so it opens from disk or an e-mail attachment."""
    parts: list[str] = []
    for kind, body in blocks:
        if kind in ("h1", "h2", "h3"):
            parts.append(f"<{kind}>{_inline(body)}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{_inline(body)}</p>")
        elif kind == "quote":
            parts.append(f"<blockquote>{_inline(body)}</blockquote>")
        elif kind == "verdict":
            cls = "yes" if body[0] else "no"
            parts.append(f'<p class="verdict {cls}">{_inline(body[1])}</p>')
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(x)}</li>" for x in body) + "</ul>")
        elif kind == "table":
            parts.append(html_table(body))
        elif kind == "img":
            data = base64.b64encode((images / body[0]).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(body[0])}" '
                f'src="data:image/png;base64,{data}"><figcaption>{_inline(body[1])}'
                "</figcaption></figure>"
            )
        elif kind == "code":
            parts.append(f"<pre><code>{html.escape(body)}</code></pre>")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>'
        f"{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


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
