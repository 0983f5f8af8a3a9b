"""The comparison's figures: per-setting effects, the critical-difference diagram, search vs confirmation.

Like :mod:`sweeper.report.figures`: plain values in, one PNG out (or None when there is nothing to
draw), no timestamps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.report.figures import BEST, FAINT, _figure, _save

if TYPE_CHECKING:
    from sweeper.analysis import Verdict
    from sweeper.analysis.across import Across


def setting_effects(verdict: Verdict, path: Path) -> Path | None:
    """Effect (treatment - baseline) with its CI in each setting, one row per comparison."""
    rows = [c for c in verdict.comparisons if math.isfinite(c.effect)]
    if len(rows) < 2:
        return None
    fig = _figure(7, 0.9 + 0.32 * len(rows))
    ax = fig.subplots()
    for i, c in enumerate(reversed(rows)):
        color = "C2" if c.supported else ("C0" if c.outcome == "equivalent" else FAINT)
        lo, hi = c.ci_low, c.ci_high
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [i, i], color=color, lw=2)
        ax.scatter([c.effect], [i], color=color, zorder=3, s=20)
    labels = [f"{c.setting or 'all'}: {c.treatment}" for c in reversed(rows)]
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.axvline(0, color="black", lw=0.8)
    if verdict.rope is not None:
        ax.axvspan(-verdict.rope, verdict.rope, color="C0", alpha=0.12, lw=0)
    ax.set_xlabel(f"{verdict.metric}: treatment - baseline ({100 * (1 - verdict.alpha):g}% CI)")
    base = rows[0].baseline
    ax.set_title(f"Effect against {base} in each setting (green: supported after Holm)", fontsize=10)
    return _save(fig, path)


def cliques(ranks: list[tuple[Any, float]], cd: float) -> list[tuple[float, float]]:
    """Maximal runs of arms (sorted by rank) whose average ranks lie within ``cd``: the thick bars."""
    values = sorted(r for _, r in ranks)
    out: list[tuple[float, float]] = []
    for i in range(len(values)):
        j = i
        while j + 1 < len(values) and values[j + 1] - values[i] < cd:
            j += 1
        if j > i and not any(a <= values[i] and values[j] <= b for a, b in out):
            out.append((values[i], values[j]))
    return out


def cd_diagram(across: Across, path: Path) -> Path | None:
    """Demšar's critical-difference diagram: average ranks on an axis (1 = best), the Nemenyi CD as a
    bar, and thick lines joining arms whose ranks differ by less than the CD."""
    if not across.ranks or not math.isfinite(across.cd):
        return None
    ranks = sorted(across.ranks, key=lambda x: x[1])
    k = len(ranks)
    fig = _figure(7, 1.6 + 0.28 * k)
    ax = fig.subplots()
    ax.set_xlim(0.6, k + 0.4)
    ax.set_ylim(-(k // 2 + 1.5), 2.2)
    ax.axis("off")
    ax.plot([1, k], [0, 0], color="black", lw=1)
    for tick in range(1, k + 1):
        ax.plot([tick, tick], [0, 0.12], color="black", lw=1)
        ax.text(tick, 0.25, str(tick), ha="center", fontsize=8)
    ax.plot([1, 1 + across.cd], [1.4, 1.4], color="black", lw=1.5)
    ax.text(1 + across.cd / 2, 1.6, f"CD = {across.cd:.2f}", ha="center", fontsize=8)
    half = (k + 1) // 2
    for i, (arm, r) in enumerate(ranks):
        left = i < half
        depth = -(i + 0.8) if left else -(k - i - 0.2)
        x_text = 0.7 if left else k + 0.3
        color = BEST if arm == across.treatment else ("C0" if arm == across.baseline else "black")
        ax.plot([r, r, x_text], [0, depth, depth], color=color, lw=0.8)
        ax.text(
            x_text,
            depth,
            f" {arm} ({r:.2f}) " if left else f" ({r:.2f}) {arm} ",
            ha="right" if left else "left",
            va="center",
            fontsize=8,
            color=color,
        )
    for j, (a, b) in enumerate(cliques(ranks, across.cd)):
        y = -0.25 - 0.18 * j
        ax.plot([a - 0.03, b + 0.03], [y, y], color="black", lw=3)
    ax.set_title(
        f"Average rank over {across.n_settings} settings (Friedman p = {across.p_value:.3g});\n"
        "a bar joins arms the Nemenyi test cannot tell apart",
        fontsize=9,
    )
    return _save(fig, path)


def search_vs_confirm(verdict: Verdict, path: Path) -> Path | None:
    """Each arm's search-stage estimate (best trial, on the search's seeds) beside its confirmation
    estimate (fresh seeds): the drop is the winner's curse, measured."""
    if not verdict.search:
        return None
    pairs: dict[tuple[str, Any], tuple[float, float]] = {}
    confirmed = {(c.setting, c.treatment): c for c in verdict.comparisons}
    for s in verdict.search:
        c = confirmed.get((s.setting, s.treatment))
        if c is None:
            continue
        pairs[(s.setting, s.treatment)] = (s.treatment_mean, c.treatment_mean)
        pairs[(s.setting, s.baseline)] = (s.baseline_mean, c.baseline_mean)
    if not pairs:
        return None
    fig = _figure(7, 0.9 + 0.3 * len(pairs))
    ax = fig.subplots()
    for i, (_key, (before, after)) in enumerate(sorted(pairs.items(), key=str)):
        ax.plot([before, after], [i, i], color=FAINT, lw=1.5)
        ax.scatter([before], [i], color="C1", zorder=3, s=22, label="search (best trial)" if i == 0 else None)
        ax.scatter(
            [after], [i], color="C0", zorder=3, s=22, label="confirmation (fresh seeds)" if i == 0 else None
        )
    ax.set_yticks(range(len(pairs)), [f"{s or 'all'}: {a}" for s, a in sorted(pairs, key=str)], fontsize=8)
    ax.set_xlabel(f"mean {verdict.metric}")
    ax.legend(fontsize=8, loc="best")
    ax.set_title("Search-stage estimate vs confirmation on fresh seeds (the winner's curse)", fontsize=10)
    return _save(fig, path)
