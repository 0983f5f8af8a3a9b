"""The report's sections as blocks (headings, paragraphs, tables, figures) from values already computed:
the headline and verdict, the summary, stability, seed factors, the experiment and its environment.
The comparison's own sections (settings, across settings, cost, confirmation) are in ``compare.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.report.compare import comparison_blocks
from sweeper.report.render import Block, fmt_number, interval

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis import Stability, Verdict
    from sweeper.analysis.importance import Importance
    from sweeper.spec.experiment import Experiment

SUMMARY_ROWS = 20  # rows of the summary table in the pages; summary.csv holds them all
LISTED = 100  # trials indistinguishable from the best named in the pages; verdict.json holds them all


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


def blocks(
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
                f"e.g. `compare: {_compare_example(spec)}`.",
            )
        )
    else:
        main = verdict.main
        b.append(("verdict", (verdict.supported, verdict.sentence)))
        rows = [
            ("effect (treatment - baseline)", fmt_number(main.effect)),
            (f"{100 * (1 - verdict.alpha):g}% CI", interval(main.ci_low, main.ci_high)),
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
        b.extend(comparison_blocks(verdict))
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
                                "CI": interval(c.ci_low, c.ci_high),
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
    b.extend(seed_factor_blocks(df, spec))

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


def seed_factor_blocks(df: pd.DataFrame, spec: Experiment) -> list[Block]:
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


def _compare_example(spec: Experiment) -> str:
    """A ``compare:`` this sweep could state: its first choice variable with two of its levels."""
    for v in spec.variables:
        if v.kind == "choice" and len(v.choices) > 1:
            return f"{{variable: {v.name}, treatment: {v.choices[1]}, baseline: {v.choices[0]}}}"
    return "{variable: model, treatment: custom, baseline: resnet50}"
