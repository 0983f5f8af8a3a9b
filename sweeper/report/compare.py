"""The comparison's sections: each setting's verdict, the verdict across settings, the cost side and
search vs confirmation (issue 13), as blocks for the renderers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweeper.report.render import Block, fmt_number, interval

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.analysis import Verdict


def comparison_blocks(verdict: Verdict) -> list[Block]:
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
                            "95% CI (stratified bootstrap)": interval(g.ci_low, g.ci_high),
                        }
                        for g in a.iqm
                    ]
                    + [
                        {
                            "arm": f"P({a.treatment} > {a.baseline})",
                            "IQM (normalised)": a.poi,
                            "95% CI (stratified bootstrap)": interval(a.poi_low, a.poi_high),
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
                            "CI": interval(c.ci_low, c.ci_high),
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
                    "confirmed CI": interval(c.ci_low, c.ci_high),
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
            "CI": interval(c.ci_low, c.ci_high),
            "p": c.p_value,
            "p (Holm)": c.p_adjusted,
            "test": c.test,
            "n": c.n,
        }
        if rope and c.rope is not None:
            row["P(inside ROPE)"] = c.rope.inside
        rows.append(row)
    return pd.DataFrame(rows)
