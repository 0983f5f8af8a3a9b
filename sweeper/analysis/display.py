"""Rich display in notebooks: small HTML cards with their key figure drawn inline as SVG.

Jupyter calls ``_repr_html_`` on the last value of a cell; a launch result and a verdict answer with
these cards. The figures are hand-made SVG (a few shapes) so that showing a result never imports
matplotlib or writes a file.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweeper.results.values import mean_of

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

W, H = 320, 90
CARD = (
    'style="font-family:sans-serif;border:1px solid #ccc;border-radius:6px;padding:8px 12px;max-width:760px"'
)


def _num(x: Any) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    return f"{v:.4g}" if math.isfinite(v) else ""


def svg_interval(effect: float, low: float, high: float, good: bool) -> str:
    """The effect and its interval on an axis that shows zero: the verdict at a glance."""
    xs = [x for x in (effect, low, high, 0.0) if math.isfinite(x)]
    lo, hi = min(xs), max(xs)
    pad = (hi - lo) * 0.1 or 1.0
    lo, hi = lo - pad, hi + pad

    def px(x: float) -> float:
        return 10 + (W - 20) * (x - lo) / (hi - lo)

    colour = "#1a7f37" if good else "#b35900"
    parts = [
        f'<line x1="{px(0):.1f}" y1="8" x2="{px(0):.1f}" y2="52" stroke="#888" stroke-dasharray="3,3"/>',
        f'<text x="{px(0):.1f}" y="66" font-size="10" text-anchor="middle">0</text>',
    ]
    if math.isfinite(low) and math.isfinite(high):
        parts.append(
            f'<line x1="{px(low):.1f}" y1="30" x2="{px(high):.1f}" y2="30"'
            f' stroke="{colour}" stroke-width="3"/>'
        )
    if math.isfinite(effect):
        parts.append(f'<circle cx="{px(effect):.1f}" cy="30" r="5" fill="{colour}"/>')
    return f'<svg width="{W}" height="72" role="img" aria-label="effect and interval">{"".join(parts)}</svg>'


def svg_history(values: Sequence[float], maximize: bool) -> str:
    """Trial values in trial order (dots) and the best so far (a line)."""
    pts = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
    if not pts:
        return ""
    ys = [v for _, v in pts]
    lo, hi = min(ys), max(ys)
    span = (hi - lo) or 1.0
    n = max(1, len(values) - 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return 8 + (W - 16) * i / n, H - 8 - (H - 16) * (v - lo) / span

    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="#7aa6d6"/>' for x, y in (xy(i, v) for i, v in pts)
    )
    best, line = None, []
    for i, v in pts:
        best = v if best is None or (v > best if maximize else v < best) else best
        line.append("{:.1f},{:.1f}".format(*xy(i, best)))
    path = f'<polyline points="{" ".join(line)}" fill="none" stroke="#d62728" stroke-width="1.5"/>'
    return f'<svg width="{W}" height="{H}" role="img" aria-label="optimisation history">{dots}{path}</svg>'


def frame_html(df: pd.DataFrame, rows: int = 5) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_num(x) if not isinstance(x, str) else html.escape(x)}</td>" for x in r)
        + "</tr>"
        for r in df.head(rows).itertuples(index=False)
    )
    return f'<table style="font-size:12px"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def verdict_html(v: Any) -> str:
    """A ``Verdict`` (typed loosely: comparison.py imports this module, never the reverse)."""
    m = v.main
    good = bool(v.supported)  # across settings when there are several, else the main comparison
    mark = v.outcome
    return (
        f"<div {CARD}><b>Verdict: {mark}</b> &mdash; {html.escape(v.sentence)}<br>"
        f"{svg_interval(m.effect, m.ci_low, m.ci_high, good)}<br>"
        f"<small>effect {_num(m.effect)} ({m.treatment} &minus; {m.baseline}), "
        f"{100 * (1 - v.alpha):g}% CI [{_num(m.ci_low)}, {_num(m.ci_high)}], p={_num(m.p_value)}, "
        f"{html.escape(m.test)}, n={m.n}</small></div>"
    )


def _params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={_num(v) if isinstance(v, float) else html.escape(str(v))}" for k, v in params.items()
    )


def _best_html(b: dict[str, Any]) -> str:
    with_ = f" with {_params(b['params'])}" if b["params"] else ""
    return f"trial {b['trial']} {html.escape(b['metric'])}={_num(b['mean'])} ({mean_of(b['n'])}){with_}"


def sweep_html(
    spec: Experiment,
    path: str,
    table: pd.DataFrame,
    agg: pd.DataFrame,
    counts: dict[str, int],
    warnings: Sequence[str] = (),
) -> str:
    """A launch result: counts, its warnings, best trial, the optimisation history and the top of the
    summary (``agg``: ``aggregate(table, spec)``)."""
    from sweeper.results.values import best_per_setting, best_trial

    runs = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no runs"
    out = [f"<div {CARD}><b>{html.escape(spec.name)}</b>: {table['trial'].nunique() if len(table) else 0}"]
    out.append(f" trials, {len(table)} runs ({html.escape(runs)})<br>")
    out += [f'<span style="color:#b15928">warning: {html.escape(w)}</span><br>' for w in warnings]
    best = best_trial(table, spec) if len(table) else None
    settings = best_per_setting(table, spec)
    if settings:  # compare: within: a best across data sets would be the easiest one's
        out.append(f"best per {html.escape(' and '.join(settings[0]['setting']))}:<br>")
        out += [f"&nbsp;&nbsp;{_params(b['setting'])}: {_best_html(b)}<br>" for b in settings]
    elif best:
        out.append(f"best: {_best_html(best)}<br>")
    if best:
        by_trial = agg.set_index("trial")[f"{spec.primary.name}_mean"].sort_index()
        values = [float(x) for x in by_trial.to_numpy(dtype=float, na_value=math.nan)]
        out.append(svg_history(values, spec.primary.direction == "maximize"))
        out.append(
            frame_html(agg.drop(columns=[c for c in agg.columns if c.endswith(("_ci_low", "_ci_high"))]))
        )
    out.append(f"<small>results: <code>{html.escape(path)}</code></small></div>")
    return "".join(out)
