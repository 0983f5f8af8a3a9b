"""The report's figures (PNG, matplotlib Agg): each draws values already computed from the table.

Every function takes plain data and a path, writes one PNG and returns its path, or None when the
figure has nothing to show (one metric: no Pareto front; no history table: no learning curves).
Figures carry no timestamps, so the same table draws the same files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from sweeper.analysis import Verdict
    from sweeper.analysis.importance import Importance
    from sweeper.spec.experiment import Experiment, Variable

DPI = 100
END_LABEL_SIZE = 9  # the value labels at each parallel axis' ends: readable at the report's width
TOP = 15  # trials drawn in the parallel coordinates and learning curves
# Wide sweeps (10,000 variables, a choice of 100,000 levels) draw in bounded time: at most this many
# variables get a panel or axis, and an axis labels at most this many levels; the figure says so.
MAX_PANELS = 12
MAX_LABELS = 12
BEST = "#d62728"
FAINT = "#9e9e9e"
OTHERS = ("C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9")  # tab10 without BEST's red and grey


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    """Write the PNG beside its final name and rename it in: a killed report leaves no empty figure."""
    from sweeper.results.atomic import replacing

    with replacing(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    return path


def _shown(names: list[str], imp: Importance | None = None) -> tuple[list[str], str]:
    """The variables a figure draws and a note on the rest: every one, or on a wide sweep the
    MAX_PANELS most important (the report's importance; a conditional variable by its largest share
    in a branch where it is active), most important first. Variables the importance did not weigh
    come after those it did, in sweep-file order; with no importance at all, the first MAX_PANELS."""
    if len(names) <= MAX_PANELS:
        return names, ""
    score: dict[str, float] = {}
    if imp is not None:
        score.update(imp.values)
        for _, _, values in imp.branches:
            for name, share in values.items():
                score[name] = max(share, score.get(name, share))
    if imp is None or not any(n in score for n in names):
        return names[:MAX_PANELS], f"; the first {MAX_PANELS} of {len(names)} variables, in sweep-file order"
    ranked = sorted(names, key=lambda n: -score.get(n, -math.inf))  # stable: ties keep file order
    return ranked[:MAX_PANELS], f"; the {MAX_PANELS} most important of {len(names)} variables ({imp.method})"


def _thinned(ticks: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """At most about MAX_LABELS evenly spaced level labels, the first and last always among them."""
    if len(ticks) <= MAX_LABELS:
        return ticks
    step = math.ceil((len(ticks) - 1) / (MAX_LABELS - 1))
    kept = ticks[::step]
    return kept if kept[-1] == ticks[-1] else [*kept, ticks[-1]]


def _trial_stats(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    from sweeper.analysis import completed

    done = completed(df)
    done = done[done[metric].notna()]
    return done.groupby("trial")[metric].agg(["mean", "std", "count"])


def metric_vs_variables(
    df: pd.DataFrame, spec: Experiment, path: Path, imp: Importance | None = None
) -> Path | None:
    """The primary metric against each swept variable: replicates as dots, trial means with sd
    (``imp`` picks the variables of a wide sweep)."""
    import numpy as np

    from sweeper.analysis import completed, swept

    metric = spec.primary.name
    names, rest = _shown(swept(spec, df), imp)
    done = completed(df)
    done = done[done[metric].notna()]
    if not names or done.empty:
        return None
    stats = _trial_stats(df, metric)
    firsts = done.groupby("trial")[names].first()
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = _figure(4.2 * cols, 3.3 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    rng = np.random.default_rng(0)
    for ax, name in zip(axes, names, strict=False):
        v = spec.variable(name)
        x_rep, x_trial = done[name], firsts[name].reindex(stats.index)
        if v.kind == "choice" or x_trial.dropna().map(type).eq(str).any():
            order = list(v.choices or sorted(x_trial.dropna().unique(), key=str))
            levels = len(order)
            if levels > MAX_LABELS:  # only the levels some trial has, in the variable's order
                seen = set(map(str, x_trial.dropna()))
                order = [c for c in order if str(c) in seen]
            xr = _positions(x_rep, order) + rng.uniform(-0.15, 0.15, len(x_rep))
            xt = _positions(x_trial, order)
            ticks = _thinned([(float(i), str(c)) for i, c in enumerate(order)])
            ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks])
            if len(ticks) > 6:  # many labels fit only slanted
                ax.tick_params(axis="x", labelrotation=45, labelsize=7)
            if levels > MAX_LABELS:
                label = f"{levels} levels, {len(order)} in trials"
                label += f", {len(ticks)} labelled" if len(ticks) < len(order) else ""
                ax.set_title(label, fontsize=8)
        else:
            xr, xt = x_rep.astype(float), x_trial.astype(float)
            if v.log:
                _log_axis(ax, "x")
        # markers on a line without segments, not scatter: one path, a tenth of the drawing time
        ax.plot(xr, done[metric], "o", ms=2.8, mew=0, color=FAINT, alpha=0.5, label="replicates")
        _mean_sd(ax, xt, stats["mean"], stats["std"], ms=4, lw=1, label="trial mean ± sd")
        _auto_log(ax, done[metric])
        ax.set_xlabel(name + (" (active in some trials)" if v.when else ""))
        ax.set_ylabel(metric)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"{metric} against each variable{rest}")
    return _save(fig, path)


def _mean_sd(
    ax: Any, x: Any, mean: Any, sd: Any, *, ms: float, lw: float, label: str, alpha: float = 1.0
) -> None:
    """Means as dots with ±sd bars, as one line broken by NaNs: ``errorbar`` builds a segment
    object per trial (most of a 1,000-trial figure's time)."""
    import numpy as np

    x, m = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
    s = np.nan_to_num(np.asarray(sd, dtype=float))
    gap = np.full_like(x, np.nan)
    ax.plot(
        np.column_stack([x, x, gap]).ravel(),
        np.column_stack([m - s, m + s, gap]).ravel(),
        color="C0",
        lw=lw,
        alpha=alpha,
    )
    ax.plot(x, m, "o", ms=ms, color="C0", alpha=alpha, label=label)


def _positions(values: pd.Series, order: list[Any]) -> pd.Series:
    """Categorical values as x positions 0..k-1 in the variable's own order."""
    pos = {str(c): float(i) for i, c in enumerate(order)}
    return values.map(lambda c: pos.get(str(c), math.nan)).astype(float)


def optimisation_history(df: pd.DataFrame, spec: Experiment, path: Path) -> Path | None:
    """Trial means in trial order with the best so far: did the search converge?"""
    import numpy as np

    metric = spec.primary.name
    stats = _trial_stats(df, metric).sort_index()
    if stats.empty:
        return None
    fig = _figure(7, 3.6)
    ax = fig.subplots()
    x = stats.index.to_numpy(dtype=float)
    _mean_sd(
        ax, x, stats["mean"], stats["std"], ms=3, lw=0.8, alpha=0.8, label="trial mean ± sd over replicates"
    )
    acc = np.maximum.accumulate if spec.primary.direction == "maximize" else np.minimum.accumulate
    ax.step(x, acc(stats["mean"].to_numpy()), where="post", color=BEST, label="best so far")
    _auto_log(ax, stats["mean"])
    ax.set_xlabel("trial")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.set_title(f"Optimisation history ({spec.search.method})")
    return _save(fig, path)


def _scale(v: Variable, values: pd.Series) -> tuple[pd.Series, list[tuple[float, str]]]:
    """Values mapped to [0, 1] on the variable's own range, with a few labelled ticks."""
    import numpy as np

    if v.kind == "choice":
        k = max(len(v.choices) - 1, 1)
        pos = {str(c): i / k for i, c in enumerate(v.choices)}
        return (
            values.map(lambda c: pos.get(str(c), np.nan)).astype(float),
            _thinned([(pos[str(c)], str(c)) for c in v.choices]),
        )
    x = values.astype(float)
    lo = float(v.low) if v.low is not None else float(x.min())
    hi = float(v.high) if v.high is not None else float(x.max())
    f = np.log10 if v.log and lo > 0 else (lambda a: a)
    span = (f(hi) - f(lo)) or 1.0
    return (f(x) - f(lo)) / span, [(0.0, f"{lo:.3g}"), (1.0, f"{hi:.3g}")]


def parallel_coordinates(
    df: pd.DataFrame, spec: Experiment, path: Path, top: int = TOP, imp: Importance | None = None
) -> Path | None:
    """The best trials' variables side by side, coloured by the primary metric (``imp`` picks the
    variables of a wide sweep)."""
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    from sweeper.analysis import completed, swept

    metric = spec.primary.name
    names, rest = _shown(swept(spec, df), imp)
    stats = _trial_stats(df, metric)
    if not names or len(stats) < 2:
        return None
    ascending = spec.primary.direction == "minimize"
    best = stats.sort_values("mean", ascending=ascending).head(top)
    firsts = completed(df).groupby("trial")[names].first().loc[best.index]
    axes_x = np.arange(len(names) + 1)
    cols, ticks = [], []
    for name in names:
        scaled, t = _scale(spec.variable(name), firsts[name])
        cols.append(scaled.to_numpy(dtype=float))
        ticks.append(t)
    m = best["mean"].to_numpy()
    lo, hi = float(m.min()), float(m.max())
    cols.append((m - lo) / ((hi - lo) or 1.0))
    ticks.append([(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")])
    data = np.column_stack(cols)
    fig = _figure(max(6, 1.6 * len(axes_x)), 4)
    ax = fig.subplots()
    norm = Normalize(lo, hi)
    cmap = colormaps["viridis" if not ascending else "viridis_r"]
    sign = -1 if ascending else 1  # draw the best last, on top
    for row, value in sorted(zip(data, m, strict=True), key=lambda r: sign * r[1]):
        # NaN (a conditional variable inactive for this trial) breaks the line there: a line drawn
        # through that axis would read as a value the trial never had. Markers keep lone points seen.
        ax.plot(axes_x, row, color=cmap(norm(value)), lw=1.5, alpha=0.85, marker="o", ms=3)
    for i, t in enumerate(ticks):
        ax.axvline(i, color="black", lw=0.8)
        for y, label in t:
            ax.text(i + 0.03, y, label, fontsize=END_LABEL_SIZE, va="center")
    ax.set_xticks(axes_x, [*names, metric], fontsize=10)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    sm = fig.colorbar(_mappable(cmap, norm), ax=ax, pad=0.01)
    sm.set_label(metric)
    skip = " (a line breaks at a variable inactive for its trial)" if np.isnan(data).any() else ""
    many = [n for n in names if len(spec.variable(n).choices) > MAX_LABELS]  # labels thinned
    thin = f"; {', '.join(many)}: every level placed, some labelled" if many else ""
    ax.set_title(f"Top {len(best)} trials by {metric}{skip}{rest}{thin}", fontsize=10)
    return _save(fig, path)


def _mappable(cmap: Any, norm: Any) -> Any:
    from matplotlib.cm import ScalarMappable

    return ScalarMappable(norm=norm, cmap=cmap)


def arm_spread(df: pd.DataFrame, verdict: Verdict, path: Path) -> Path | None:
    """Per-seed values of each arm of the comparison, lines joining replicates of one seed."""
    import numpy as np

    from sweeper.analysis import arm_values

    c0 = verdict.comparisons[0]
    levels = [c0.baseline, *(c.treatment for c in verdict.comparisons)]
    picked = [
        arm_values(df, verdict.variable, lv, verdict.metric, c0.direction, verdict.arms) for lv in levels
    ]
    arms = [values for values, _, _ in picked]
    trials = ["" if t is None else f" (trial {t})" for _, t, _ in picked]
    if all(a.empty for a in arms):
        return None
    fig = _figure(max(4.5, 1.6 * len(levels)), 4)
    ax = fig.subplots()
    ax.boxplot(
        [a.to_numpy() for a in arms],
        positions=range(len(arms)),
        widths=0.5,
        showfliers=False,
        medianprops={"color": "black"},
    )
    seeds = sorted(set().union(*(set(a.index) for a in arms)))
    for seed in seeds:
        ys = [a.get(seed, np.nan) for a in arms]
        ax.plot(range(len(arms)), ys, color=FAINT, lw=0.7, alpha=0.7, zorder=1)
    for i, a in enumerate(arms):
        color = "C0" if i == 0 else ("C2" if verdict.comparisons[i - 1].supported else "C1")
        ax.scatter(np.full(len(a), i), a.to_numpy(), s=18, zorder=3, color=color)
    labels = [f"{levels[0]}{trials[0]}\nbaseline"] + [
        f"{c.treatment}{t}\n{'supported' if c.supported else 'not supported'}"
        for c, t in zip(verdict.comparisons, trials[1:], strict=True)
    ]
    ax.set_xticks(range(len(arms)), labels)
    ax.set_ylabel(verdict.metric)
    how = "best trial" if verdict.arms == "best" else "all trials, mean per seed"
    ax.set_title(f"{verdict.metric} per seed, by {verdict.variable} ({how})", fontsize=10)
    return _save(fig, path)


def learning_curves(
    history: pd.DataFrame | None, df: pd.DataFrame, spec: Experiment, path: Path, top: int = TOP
) -> Path | None:
    """Intermediate reports per step: the best finished trials' mean curves (band: replicate
    range), the other finished trials in grey, and trials stopped early (pruned) dashed."""
    if history is None or history.empty or "step" not in history.columns:
        return None
    metric = next(
        (m.name for m in spec.metrics if m.name in history.columns and history[m.name].notna().any()), None
    )
    if metric is None:
        return None
    h = last_attempt(history[history[metric].notna()])
    stats = _trial_stats(df, spec.primary.name)
    ascending = spec.primary.direction == "minimize"
    chosen = list(stats.sort_values("mean", ascending=ascending).index[:top])
    curves = h.groupby(["trial", "step"])[metric].agg(["mean", "min", "max"]).reset_index()
    fig = _figure(7, 4)
    ax = fig.subplots()
    stopped = False
    for t, curve in curves.groupby("trial"):
        if t in chosen:
            continue
        early = t not in stats.index  # no finished replicate: pruned, failed or still running
        stopped |= early
        ax.plot(curve["step"], curve["mean"], color=FAINT, lw=0.7, alpha=0.7, ls="--" if early else "-")
    for i, t in enumerate(chosen):
        curve = curves[curves["trial"] == t]
        if curve.empty:
            continue
        color = BEST if i == 0 else OTHERS[(i - 1) % len(OTHERS)]
        ax.plot(
            curve["step"],
            curve["mean"],
            color=color,
            lw=1.6 if i == 0 else 1,
            label=f"trial {t}" if i < 8 else None,
        )
        ax.fill_between(curve["step"], curve["min"], curve["max"], color=color, alpha=0.12, lw=0)
    if stopped:
        ax.plot([], [], color=FAINT, ls="--", label="stopped early")
    _auto_log(ax, curves["mean"])
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7, ncols=2)
    ax.set_title(f"Learning curves: top {len(chosen)} finished trials by {spec.primary.name}", fontsize=10)
    return _save(fig, path)


def _auto_log(ax: Any, values: Any, ratio: float = 100.0, axis: str = "y") -> None:
    """A log axis when positive values span more than ``ratio`` (errors, losses, costs): else the
    best trials' differences vanish in a linear plot dominated by a few large ones."""
    import numpy as np

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) and v.min() > 0 and v.max() / v.min() > ratio:
        _log_axis(ax, axis)


def _log_axis(ax: Any, axis: str) -> None:
    """A log scale labelled in plain text (1e-04): matplotlib's default labels are mathtext, and
    parsing them was a third of the variables figure's time."""
    from matplotlib.ticker import LogFormatter

    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    scale = ax.xaxis if axis == "x" else ax.yaxis
    scale.set_major_formatter(LogFormatter())
    scale.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def last_attempt(history: pd.DataFrame) -> pd.DataFrame:
    """Rows of each run's last attempt: a retried run reports its steps again from the start."""
    if "attempt" not in history.columns or history.empty:
        return history
    last = history.groupby(["trial", "replicate"])["attempt"].transform("max")
    return history[history["attempt"] == last]


def pareto_mask(points: Any, maximize: Sequence[bool]) -> Any:
    """Rows of ``points`` no other row dominates (better or equal everywhere, better somewhere)."""
    import numpy as np

    p = np.asarray(points, dtype=float) * np.where(np.asarray(maximize), -1.0, 1.0)  # minimize all
    keep = np.ones(len(p), dtype=bool)
    for i in range(len(p)):
        dominated = np.all(p <= p[i], axis=1) & np.any(p < p[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def pareto_front(df: pd.DataFrame, spec: Experiment, path: Path) -> Path | None:
    """Trial means on the first two metrics, the non-dominated trials joined up."""
    if len(spec.metrics) < 2:
        return None
    a, b = spec.metrics[0], spec.metrics[1]
    from sweeper.analysis import completed

    done = completed(df)
    means = done.groupby("trial")[[a.name, b.name]].mean().dropna()
    if len(means) < 2:
        return None
    mask = pareto_mask(means.to_numpy(), [a.direction == "maximize", b.direction == "maximize"])
    front = means[mask].sort_values(a.name)
    fig = _figure(6, 4.5)
    ax = fig.subplots()
    ax.scatter(means[a.name], means[b.name], s=14, color=FAINT, label="trial (mean)")
    ax.plot(front[a.name], front[b.name], "o-", color=BEST, ms=5, label="Pareto front")
    for t, row in front.iterrows():
        ax.annotate(str(t), (row[a.name], row[b.name]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    _auto_log(ax, means[a.name], axis="x")  # a cost spanning orders of magnitude: log, not a pile at 0
    _auto_log(ax, means[b.name])
    ax.set_xlabel(f"{a.name} ({a.direction})")
    ax.set_ylabel(f"{b.name} ({b.direction})")
    ax.legend(fontsize=8)
    extra = f"; {len(spec.metrics) - 2} more metric(s) not shown" if len(spec.metrics) > 2 else ""
    ax.set_title(f"Pareto front: {mask.sum()} of {len(means)} trials{extra}", fontsize=10)
    return _save(fig, path)


def importance_bars(imp: Importance, metric: str, path: Path) -> Path | None:
    """Importance per variable, largest on top: every trial's variables, then each branch's."""
    panels = ([("all trials", imp.trials, imp.values)] if imp.values else []) + list(imp.branches)
    if not panels:
        return None
    tallest = max(len(values) for _, _, values in panels)
    fig = _figure(4.2 * len(panels), 0.45 * tallest + 1.6)
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (label, trials, values) in zip(axes, panels, strict=True):
        items = sorted(values.items(), key=lambda kv: kv[1])
        ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
        for i, (_, v) in enumerate(items):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=8)
        ax.set_xlim(0, 1.15)
        ax.set_title(f"{label} ({trials} trials)", fontsize=9)
    fig.supxlabel(f"importance for {metric} ({imp.method} on trial means)", fontsize=9)
    left = [c for c in imp.left_out if not any(c in values for _, _, values in imp.branches)]
    named = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    fig.suptitle("Variable importance" + (f"; not evaluated: {named}" if left else ""), fontsize=10)
    return _save(fig, path)
