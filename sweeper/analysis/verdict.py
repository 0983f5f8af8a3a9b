"""Statistics over a trial table: aggregate replicates, test the hypothesis, measure stability.

Pure functions on DataFrames (``aggregate``, ``hypothesis_verdict``, ``stability``), plus ``summary``
and ``verdict`` that read a results folder, so a notebook can call them on any table and the report
only renders their output. The tests themselves live in ``sweeper.analysis.inference``; variable importance in
``sweeper.analysis.importance``.

How the hypothesis is tested (stated again in every report):
- an arm is one level of ``compare.variable``. With ``arms: best`` (the default) the arm is its best
  trial by mean over replicates -- tuned against tuned, what "model A beats model B" usually means;
  with ``arms: pooled`` it is every trial of the level, averaged per seed.
- replicate r of every trial shares its seed, so arms are paired by seed: paired t-test on the
  per-seed differences, or Wilcoxon signed-rank when there are >= 8 pairs and Shapiro-Wilk rejects
  normal differences. Without shared seeds: Welch's t-test, or a permutation test with a bootstrap
  CI under the same normality rule.
- the verdict is two-sided at ``alpha``: supported when the (1 - alpha) CI of the effect (treatment
  minus baseline) excludes zero on the side the metric's direction calls better. Several treatments
  against one baseline are corrected with Holm's method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.analysis.inference import LEVEL, POWER, TestResult, compare_samples, holm, kendall_w, t_interval
from sweeper.errors import SweeperError

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.model import Compare, Experiment

SMALL_N = 5  # fewer replicates than this: warn that the test can only see very large effects
ALPHA = "\N{GREEK SMALL LETTER ALPHA}"


# ---------------------------------------------------------------- aggregation


def completed(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of finished replicates: only these carry metrics worth averaging."""
    if "status" not in df.columns:
        return df
    ok = df["status"] == "complete"
    return df if ok.all() else df[ok]


def swept(spec: Experiment, df: pd.DataFrame | None = None) -> list[str]:
    """Variables that vary (constants would only repeat one value in every row)."""
    names = [v.name for v in spec.variables if v.kind != "const"]
    return [n for n in names if df is None or n in df.columns]


def aggregate(
    df: pd.DataFrame, spec: Experiment, by: Sequence[str] | None = None, level: float = LEVEL
) -> pd.DataFrame:
    """One row per trial (or per ``by`` group): n, and mean/std/CI of each metric, ranked.

    Grouped rows pool every finished replicate of the group's trials (a mean over the other
    variables weighted by replicates); ``n_trials`` says how many trials fed each group. Their CIs
    treat the pooled replicates as independent, which they are not quite (shared seeds, shared
    trials): read them as a guide; the hypothesis test is ``hypothesis_verdict``.
    """
    import numpy as np
    import pandas as pd

    metrics = [m.name for m in spec.metrics if m.name in df.columns]
    variables = swept(spec, df)
    if by:
        unknown = [b for b in by if b not in [v.name for v in spec.variables]]
        if unknown:
            raise SweeperError(
                f"--by {','.join(unknown)}: not a variable of {spec.name}; "
                f"use one of {', '.join(v.name for v in spec.variables)}"
            )
    done = completed(df)
    if by:
        keys = list(by)
        groups = done.groupby(keys, dropna=False, sort=True)
        out = groups.size().rename("n").to_frame()
        out.insert(0, "n_trials", groups["trial"].nunique())
    else:
        keys = ["trial"]
        trials = (
            df.groupby("trial", sort=True)[variables].first()
            if variables
            else (pd.DataFrame(index=pd.Index(sorted(df["trial"].unique()), name="trial")))
        )
        groups = done.groupby("trial", sort=True)
        out = trials.join(groups.size().rename("n"), how="left")
        out["n"] = out["n"].fillna(0).astype("int64")
    if "status" in df.columns and (df["status"] != "complete").any():
        # say where replicates went missing (stopped early by the pruner, failed, timed out)
        flags = pd.DataFrame(
            {"n_pruned": df["status"].eq("pruned"), "n_failed": df["status"].isin(["failed", "timeout"])}
        )
        for k in keys:
            flags[k] = df[k]
        counts = flags.groupby(keys, dropna=False, sort=True)[["n_pruned", "n_failed"]].sum()
        at = out.columns.get_loc("n") + 1
        for i, col in enumerate(("n_pruned", "n_failed")):
            out.insert(at + i, col, counts[col].reindex(out.index).fillna(0).astype("int64"))
    for m in metrics:
        agg_ = groups[m].agg(["mean", "std", "count"])
        out[f"{m}_mean"] = agg_["mean"]
        out[f"{m}_std"] = agg_["std"]
        lo, hi = t_interval(agg_["mean"], agg_["std"], agg_["count"], level)
        out[f"{m}_ci_low"] = pd.Series(lo, index=agg_.index)
        out[f"{m}_ci_high"] = pd.Series(hi, index=agg_.index)
    out = out.reset_index()
    if metrics:
        primary = spec.primary.name if spec.primary.name in metrics else metrics[0]
        ascending = _direction(spec, primary) == "minimize"
        out = out.sort_values(f"{primary}_mean", ascending=ascending, na_position="last", kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out.reset_index(drop=True)


def _direction(spec: Experiment, metric: str) -> str:
    for m in spec.metrics:
        if m.name == metric:
            return m.direction
    raise SweeperError(f"{metric!r} is not a metric of {spec.name}")


def summary(path: str | Path, by: Sequence[str] | str | None = None, level: float = LEVEL) -> pd.DataFrame:
    """The summary table of a results folder: one row per trial (or ``by`` group), ranked.

    Columns: rank, the variables (or ``by``), n, and ``<metric>_mean/_std/_ci_low/_ci_high``.
    """
    from sweeper.results.table import load, read_spec

    spec = read_spec(path)
    if isinstance(by, str):
        by = [b.strip() for b in by.split(",") if b.strip()]
    return aggregate(load(path), spec, by=by or None, level=level)


# ---------------------------------------------------------------- the hypothesis


@dataclass(frozen=True, slots=True)
class Comparison:
    """One treatment level against the baseline, with its verdict."""

    treatment: Any
    baseline: Any
    metric: str
    direction: str
    supported: bool
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    test: str
    reason: str
    paired: bool
    n: int
    n_treatment: int
    n_baseline: int
    treatment_trial: int | None
    baseline_trial: int | None
    n_needed: int | None
    sentence: str
    warnings: tuple[str, ...] = ()
    cohen_d: float = float("nan")  # effect / spread: d_z when paired, pooled-sd d when not


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the report says about the hypothesis; ``to_dict`` is the JSON of ``report --json``."""

    hypothesis: str
    variable: str
    metric: str
    alpha: float
    arms: str
    arms_note: str
    comparisons: tuple[Comparison, ...]
    holm: bool
    indistinguishable: tuple[int, ...] = ()  # trials no test can tell from the best trial
    best_trial: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def main(self) -> Comparison:
        """The comparison the headline reports: the only one, or the most favourable arm."""
        sign = 1 if self.comparisons[0].direction == "maximize" else -1
        return max(self.comparisons, key=lambda c: (c.supported, _finite(sign * c.effect)))

    @property
    def supported(self) -> bool:
        return self.main.supported

    @property
    def sentence(self) -> str:
        if len(self.comparisons) == 1:
            return self.main.sentence
        won = [c for c in self.comparisons if c.supported]
        head = (
            f"{len(won)} of {len(self.comparisons)} arms beat {self.comparisons[0].baseline} "
            f"after Holm's correction"
            if won
            else f"no arm beats {self.comparisons[0].baseline} after Holm's correction"
        )
        return f"{head}; best arm: {self.main.sentence}"

    def _repr_html_(self) -> str:
        from sweeper.analysis.display import verdict_html

        return verdict_html(self)

    def to_dict(self) -> dict[str, Any]:
        main = self.main
        out: dict[str, Any] = {
            "hypothesis": self.hypothesis,
            "supported": main.supported,
            "sentence": self.sentence,
            "variable": self.variable,
            "treatment": main.treatment,
            "baseline": main.baseline,
            "metric": self.metric,
            "direction": main.direction,
            "alpha": self.alpha,
            "effect": main.effect,
            "ci_low": main.ci_low,
            "ci_high": main.ci_high,
            "cohen_d": main.cohen_d,
            "p_value": main.p_value,
            "p_adjusted": main.p_adjusted,
            "test": main.test,
            "test_reason": main.reason,
            "paired": main.paired,
            "n": main.n,
            "n_needed": main.n_needed,
            "arms": self.arms,
            "arms_note": self.arms_note,
            "holm": self.holm,
            "warnings": list(main.warnings),
            "best_trial": self.best_trial,
            "indistinguishable_from_best": list(self.indistinguishable),
            "notes": list(self.notes),
            "comparisons": [_clean(asdict(c)) for c in self.comparisons],
        }
        cleaned: dict[str, Any] = _clean(out)
        return cleaned


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become None, numpy scalars and tuples become plain Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _level_mask(df: pd.DataFrame, variable: str, level: Any) -> pd.Series:
    column = df[variable]
    mask = (column == level).fillna(False).astype(bool)  # NA: the variable is inactive there
    if not mask.any():  # a YAML 1 against a string column, or the other way round
        mask = column.notna() & (column.astype(str) == str(level))
    return mask


def arm_values(
    df: pd.DataFrame, variable: str, level: Any, metric: str, direction: str, arms: str = "best"
) -> tuple[pd.Series, int | None, int]:
    """Per-seed values of one arm: (values indexed by seed, trial used or None, trials in arm)."""
    done = completed(df)
    rows = done[_level_mask(done, variable, level) & done[metric].notna()]
    n_trials = int(rows["trial"].nunique())
    if rows.empty:
        return rows.set_index("seed")[metric], None, 0
    if arms == "pooled":
        return rows.groupby("seed", sort=True)[metric].mean(), None, n_trials
    by_trial = rows.groupby("trial")[metric].agg(["mean", "count"])
    sign = -1 if direction == "maximize" else 1
    best = min(by_trial.index, key=lambda t: (sign * by_trial.at[t, "mean"], -by_trial.at[t, "count"], t))
    chosen = rows[rows["trial"] == best]
    return chosen.groupby("seed", sort=True)[metric].mean(), int(best), n_trials


def compare_arms(
    df: pd.DataFrame, compare: Compare, direction: str, *, levels: Sequence[Any], seed: int = 0
) -> list[Comparison]:
    """Each level in ``levels`` against the baseline; Holm-adjusted when there are several."""
    import numpy as np

    base, base_trial, _ = arm_values(
        df, compare.variable, compare.baseline, compare.metric, direction, compare.arms
    )
    raw: list[tuple[Any, TestResult, int, int, int | None]] = []
    for level in levels:
        arm, trial, _ = arm_values(df, compare.variable, level, compare.metric, direction, compare.arms)
        shared = arm.index.intersection(base.index)
        if len(shared) >= 2:
            res = compare_samples(
                arm.loc[shared].to_numpy(),
                base.loc[shared].to_numpy(),
                paired=True,
                alpha=compare.alpha,
                seed=seed,
            )
        else:
            res = compare_samples(
                arm.to_numpy(), base.to_numpy(), paired=False, alpha=compare.alpha, seed=seed
            )
        raw.append((level, res, len(arm), len(base), trial))
    many = len(raw) > 1
    adjusted = holm([r[1].p_value for r in raw]) if many else [r[1].p_value for r in raw]
    out = []
    for (level, res, na, nb, trial), p_adj in zip(raw, adjusted, strict=True):
        supported = decide(res, direction, compare.alpha, p_adj)
        warns = _warnings(res, na, nb, supported, compare.alpha)
        sentence = _sentence(
            level, compare.baseline, compare.metric, direction, res, compare.alpha, p_adj, supported, many
        )
        out.append(
            Comparison(
                treatment=level,
                baseline=compare.baseline,
                metric=compare.metric,
                direction=direction,
                supported=supported,
                effect=res.effect,
                ci_low=res.ci_low,
                ci_high=res.ci_high,
                p_value=res.p_value,
                p_adjusted=float(p_adj) if np.isfinite(p_adj) else float("nan"),
                test=res.test,
                reason=res.reason,
                paired=res.paired,
                n=res.n,
                n_treatment=na,
                n_baseline=nb,
                treatment_trial=trial,
                baseline_trial=base_trial,
                n_needed=res.n_needed,
                sentence=sentence,
                warnings=tuple(warns),
                cohen_d=_standardised(res),
            )
        )
    return out


def _standardised(res: TestResult) -> float:
    """Cohen's d of the effect: in units of the seed-to-seed spread the test works against."""
    if not (math.isfinite(res.effect) and math.isfinite(res.spread)) or res.spread == 0:
        return float("nan")
    return res.effect / res.spread


def decide(res: TestResult, direction: str, alpha: float, p_adjusted: float | None = None) -> bool:
    """Supported: significant at alpha (after any correction) and better in the metric's way."""
    p = res.p_value if p_adjusted is None else p_adjusted
    if not math.isfinite(p) or not math.isfinite(res.effect):
        return False
    better = res.effect > 0 if direction == "maximize" else res.effect < 0
    return bool(p < alpha and better)


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"


def _sentence(
    treatment: Any,
    baseline: Any,
    metric: str,
    direction: str,
    res: TestResult,
    alpha: float,
    p_adj: float,
    supported: bool,
    many: bool,
) -> str:
    a = f"{ALPHA} = {alpha:g}"
    p_text = f"p = {_fmt(p_adj)} Holm-adjusted" if many else f"p = {_fmt(res.p_value)}"
    if not math.isfinite(res.effect):
        return f"not supported at {a}: no finished replicates of {treatment} or {baseline}"
    if res.test == "none":
        return (
            f"not supported at {a}: {treatment} vs {baseline} differs by {_fmt(res.effect)} "
            f"{metric}, but {res.reason}"
        )
    side = "higher" if res.effect > 0 else "lower" if res.effect < 0 else "no different"
    gap = f"by {_fmt(abs(res.effect))}" if res.effect else ""
    what = (
        f"{treatment} is {side} than {baseline} {gap} {metric} "
        f"[{_fmt(res.ci_low)}, {_fmt(res.ci_high)}] ({res.test}, {p_text}, n = {res.n})"
    )
    what = " ".join(what.split())
    if supported:
        return f"supported at {a}: {what}"
    better = "higher" if direction == "maximize" else "lower"
    p = p_adj if math.isfinite(p_adj) else res.p_value
    if p < alpha:
        return f"not supported at {a}: {what}, but {better} is better"
    return f"not supported at {a}: {what}; the difference is not significant"


def _warnings(res: TestResult, na: int, nb: int, supported: bool, alpha: float) -> list[str]:
    out = []
    if min(na, nb) == 0:
        out.append(
            "an arm has no finished replicate: nothing to compare; the failed runs' "
            "errors are in the table's error column (sweeper.load(DIR))"
        )
    elif res.n < 2:
        out.append(f"only {res.n} replicate(s) per arm: no test is possible; set replicates: 5 or more")
    elif res.n < SMALL_N:
        out.append(
            f"n = {res.n} is too small for the test to mean much: it can only detect "
            f"differences many times the seed-to-seed spread; use replicates: {SMALL_N} "
            "or more"
        )
    if res.n_needed is not None and res.n_needed > res.n:
        out.append(
            f"about {res.n_needed} replicates per arm would detect a difference of "
            f"{_fmt(abs(res.effect))} with {POWER:.0%} power at {ALPHA} = {alpha:g} "
            f"(observed spread {_fmt(res.spread)}); this run has {res.n}"
        )
    elif res.n_needed is None and res.test not in ("none", "none (no spread)") and not supported:
        out.append(
            "the observed difference is too small against its spread for any practical "
            "number of replicates to show it"
        )
    if na != nb and res.paired:
        out.append(
            f"the arms have {na} and {nb} finished replicates; only the {res.n} shared seeds are compared"
        )
    return out


def treatment_levels(df: pd.DataFrame, spec: Experiment, compare: Compare) -> list[Any]:
    """The treatments: as named, or every level of the variable but the baseline."""
    if isinstance(compare.treatment, tuple):
        return list(compare.treatment)
    if compare.treatment is not None:
        return [compare.treatment]
    var = spec.variable(compare.variable)
    if var.kind == "choice":
        levels = list(var.choices)
    else:
        levels = sorted(completed(df)[compare.variable].dropna().unique().tolist())
    return [lv for lv in levels if str(lv) != str(compare.baseline)]


def arms_note(compare: Compare, comparisons: Sequence[Comparison], df: pd.DataFrame) -> str:
    if compare.arms == "pooled":
        return (
            f"Each level of {compare.variable} is represented by all of its trials, averaged "
            "per seed (arms: pooled): the effect is over the whole explored space of the other "
            "variables, as the search sampled it."
        )
    done = completed(df)
    many = any(
        int(done.loc[_level_mask(done, compare.variable, lv), "trial"].nunique()) > 1
        for lv in [compare.baseline, *(c.treatment for c in comparisons)]
    )
    text = (
        f"Each level of {compare.variable} is represented by its best trial (highest mean "
        f"{compare.metric} over its replicates; arms: best), so the comparison is tuned "
        "against tuned, paired by seed."
    )
    if many:
        text += (
            " Picking the best of several trials on the same replicates flatters the level "
            "with more trials (winner's curse); confirm a close call by rerunning the two "
            "chosen configurations on fresh seeds, or use arms: pooled."
        )
    return text


def best_vs_rest(
    df: pd.DataFrame, spec: Experiment, metric: str | None = None, alpha: float = 0.05
) -> tuple[int | None, list[int]]:
    """The best trial and the trials a (Holm-corrected, paired) t-test cannot tell from it."""
    metric = metric or spec.primary.name
    direction = _direction(spec, metric)
    done = completed(df)
    done = done[done[metric].notna()]
    if done.empty:
        return None, []
    means = done.groupby("trial")[metric].agg(["mean", "count"])
    means = means[means["count"] >= 1]
    sign = -1 if direction == "maximize" else 1
    best = min(means.index, key=lambda t: (sign * means.at[t, "mean"], -means.at[t, "count"], t))
    wide = done.groupby(["seed", "trial"])[metric].mean().unstack("trial")
    ref = wide[best].dropna()
    trials, ps = [], []
    for t in means.index:
        if t == best:
            continue
        other = wide[t].dropna()
        shared = ref.index.intersection(other.index)
        if len(shared) >= 2:
            res = compare_samples(
                other.loc[shared].to_numpy(),
                ref.loc[shared].to_numpy(),
                paired=True,
                alpha=alpha,
                robust=False,
            )
        else:
            res = compare_samples(other.to_numpy(), ref.to_numpy(), paired=False, alpha=alpha, robust=False)
        trials.append(int(t))
        ps.append(res.p_value)
    adjusted = holm(ps)
    same = [t for t, p in zip(trials, adjusted, strict=True) if math.isfinite(p) and p >= alpha]
    return int(best), same


def hypothesis_verdict(df: pd.DataFrame, spec: Experiment, seed: int = 0) -> Verdict | None:
    """The verdict on the sweep's ``compare:``; None when the sweep states no comparison."""
    compare = spec.compare
    if compare is None:
        return None
    if compare.variable not in df.columns or compare.metric not in df.columns:
        raise SweeperError(
            f"compare: the trial table has no column {compare.variable!r} or "
            f"{compare.metric!r}; it was written by another sweep file"
        )
    direction = _direction(spec, compare.metric)
    levels = treatment_levels(df, spec, compare)
    if not levels:
        raise SweeperError(
            f"compare: {compare.variable} has no level besides the baseline {compare.baseline!r} to compare"
        )
    comparisons = compare_arms(df, compare, direction, levels=levels, seed=seed)
    best, same = best_vs_rest(df, spec, compare.metric, compare.alpha)
    notes = []
    if len(comparisons) > 1:
        notes.append(
            f"{len(comparisons)} treatments against one baseline: p-values are "
            f"Holm-adjusted (family-wise error at {ALPHA}); CIs are not adjusted."
        )
    return Verdict(
        hypothesis=spec.hypothesis,
        variable=compare.variable,
        metric=compare.metric,
        alpha=compare.alpha,
        arms=compare.arms,
        arms_note=arms_note(compare, comparisons, df),
        comparisons=tuple(comparisons),
        holm=len(comparisons) > 1,
        indistinguishable=tuple(same),
        best_trial=best,
        notes=tuple(notes),
    )


def verdict(path: str | Path) -> Verdict | None:
    """The verdict on a results folder's hypothesis (None when its sweep has no ``compare:``)."""
    from sweeper.results.table import load, read_spec

    return hypothesis_verdict(load(path), read_spec(path))


# ---------------------------------------------------------------- stability


@dataclass(frozen=True, slots=True)
class Stability:
    """How much the ranking depends on the seed (the "if I perturb it, does it hold?" check)."""

    table: pd.DataFrame  # per trial: rank, mean, std, cv, seed_rank_min/max, best_on, flips
    kendall_w: float  # agreement of the per-seed rankings of the top trials (1 = identical)
    seeds: int
    top: int


def stability(df: pd.DataFrame, spec: Experiment, top: int = 10) -> Stability:
    """Spread across seeds per trial, and whether the top trials' order flips from seed to seed."""
    import numpy as np
    import pandas as pd

    metric = spec.primary.name
    direction = spec.primary.direction
    done = completed(df)
    done = done[done[metric].notna()]
    empty = pd.DataFrame(
        columns=[
            "rank",
            "trial",
            "n",
            "mean",
            "std",
            "cv",
            "seed_rank_min",
            "seed_rank_max",
            "best_on",
            "flips",
        ]
    )
    if done.empty:
        return Stability(empty, float("nan"), 0, 0)
    g = done.groupby("trial")[metric]
    table = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std()})
    with np.errstate(divide="ignore", invalid="ignore"):
        table["cv"] = table["std"] / table["mean"].abs()
    table = table.sort_values("mean", ascending=direction == "minimize", kind="stable")
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    wide = done.groupby(["seed", "trial"])[metric].mean().unstack("trial")
    chosen = [t for t in table.index[:top]]
    sub = wide[chosen].dropna(axis=0, how="any")  # seeds every top trial finished
    table["seed_rank_min"] = np.nan
    table["seed_rank_max"] = np.nan
    table["best_on"] = np.nan
    table["flips"] = False
    w = float("nan")
    if len(sub) >= 2 and len(chosen) >= 2:
        ranks = sub.rank(axis=1, ascending=direction == "minimize", method="min")
        table.loc[chosen, "seed_rank_min"] = ranks.min().to_numpy()
        table.loc[chosen, "seed_rank_max"] = ranks.max().to_numpy()
        table.loc[chosen, "best_on"] = (ranks == 1).mean().to_numpy()
        table.loc[chosen, "flips"] = (ranks.min() != ranks.max()).to_numpy()
        w = kendall_w(sub.rank(axis=1).to_numpy())
    table = table.reset_index()
    table = table[
        ["rank", "trial", "n", "mean", "std", "cv", "seed_rank_min", "seed_rank_max", "best_on", "flips"]
    ]
    return Stability(table, w, len(sub), len(chosen))
