"""Which variables matter: Optuna's fANOVA on a study rebuilt from the trial table.

One Optuna trial per sweeper trial, its value the mean over finished replicates. Conditional
variables are weighed again inside each branch where they are active. PED-ANOVA stands in when
scikit-learn (which fANOVA's random forest needs) is not installed. fANOVA's cost grows with the
trials (58 % of a 2,000-trial report went there), so at most ``SAMPLE`` trials, drawn with a fixed
seed, feed it; the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweeper.analysis.aggregate import complete_trials, completed, direction, stage_rows, swept

if TYPE_CHECKING:
    import pandas as pd

    from sweeper.spec.experiment import Experiment

SAMPLE = 300  # trials fANOVA sees at most (its cost grows with them): a seeded sample, stated
MAX_LEVELS = 64  # a choice with more levels is left out (one-hot columns would swamp the forest)
MAX_VARIABLES = 32  # variables fANOVA sees at most: those whose rank correlates most with the metric
FANOVA_TREES = 8  # Optuna's default 64 costs 8x; the shares move by less than the sample's own spread (bench)


@dataclass(frozen=True, slots=True)
class Importance:
    """Importance of each variable for the primary metric (fANOVA shares, summing to about 1).

    ``values`` covers the variables every trial has; a conditional variable gets its share inside
    each branch where it is active (``branches``: label such as ``model=mlp``, trials, values).
    """

    values: dict[str, float]
    trials: int
    left_out: tuple[str, ...]  # conditional variables, absent from ``values``
    note: str = ""
    method: str = "fANOVA"
    branches: tuple[tuple[str, int, dict[str, float]], ...] = ()
    of: int = 0  # finished trials in the table; more than ``trials`` when a sample was drawn


BRANCH_MIN_TRIALS = 4  # fewer trials in a branch say nothing about its variables


def importance(df: pd.DataFrame, spec: Experiment, metric: str | None = None, seed: int = 0) -> Importance:
    """Optuna's fANOVA on a study rebuilt from the table (one Optuna trial per sweeper trial).

    The target is the trial's mean over its finished replicates. Constant variables get no share.
    Conditional variables are evaluated again inside each branch (trials sharing one set of active
    variables), since a variable can only matter where it exists.
    """
    import numpy as np
    import pandas as pd

    metric = metric or spec.primary.name
    done = completed(complete_trials(stage_rows(df), spec)[0])
    done = done[done[metric].notna()]
    ids = np.unique(done["trial"].to_numpy())
    if len(ids) > SAMPLE:
        keep = np.random.default_rng(seed).choice(ids, SAMPLE, replace=False)
        done = done[done["trial"].isin(keep)]
    names = swept(spec, df)
    means = done.groupby("trial")[metric].mean()
    firsts = done.groupby("trial")[names].first()
    names, screened = _bounded(spec, names, firsts, means)
    firsts = firsts[names]
    conditional = tuple(v.name for v in spec.variables if v.when and v.name in names)
    if done.empty or not names:
        return Importance({}, 0, conditional, screened or "no finished trials with swept variables")
    goal = direction(spec, metric)
    variables = [v for v in spec.variables if v.name in names]
    cells = firsts.to_dict("index")  # one pass over the frame, not a .at lookup per cell
    rows = []
    for trial, value in means.items():
        row = cells[trial]  # a missing cell (NA): the variable is inactive there
        params = {v.name: _param(v, row[v.name]) for v in variables if not pd.isna(row[v.name])}
        rows.append((params, float(value)))
    evaluate, method, note = _evaluator(seed)
    always = [(p, y) for p, y in rows if all(v.name in p for v in variables if not v.when)]
    if len(always) < 2:
        return Importance({}, len(always), conditional, f"{method} needs at least 2 finished trials", method)
    try:
        values = evaluate(_study(always, variables, goal))
    except (ValueError, RuntimeError) as exc:  # e.g. every variable constant across trials
        return Importance({}, len(always), conditional, f"{method} could not run: {exc}", method)
    branches = []
    for active in sorted({frozenset(p) for p, _ in rows}, key=sorted):
        if not active & set(conditional):
            continue
        members = [(p, y) for p, y in rows if frozenset(p) == active]
        fixed = {k for k in active if len({repr(p[k]) for p, _ in members}) == 1}
        label = (
            ", ".join(
                f"{k}={members[0][0][k]}"
                for k in sorted(fixed)
                if any(k == ref for v in variables for ref, _ in v.when)
            )
            or "all"
        )
        free = [v for v in variables if v.name in active and v.name not in fixed]
        if len(members) < BRANCH_MIN_TRIALS or not free:
            continue
        sub = [({k: p[k] for k in p if k not in fixed}, y) for p, y in members]
        try:
            branches.append((label, len(members), evaluate(_study(sub, free, goal))))
        except (ValueError, RuntimeError):
            continue
    left = tuple(c for c in conditional if c not in values)
    if len(ids) > SAMPLE:
        drawn = f"fANOVA saw a seeded random sample of {SAMPLE} of the {len(ids)} finished trials"
        note = f"{note}; {drawn}" if note else drawn
    if screened:
        note = f"{note}; {screened}" if note else screened
    return Importance(values, len(always), left, note, method, tuple(branches), len(ids))


def _bounded(
    spec: Experiment, names: list[str], firsts: pd.DataFrame, means: pd.Series
) -> tuple[list[str], str]:
    """The variables fANOVA can afford, and what the report says about the others.

    Its cost grows with one-hot columns and with variables: a choice of more than ``MAX_LEVELS``
    levels is left out, and of more than ``MAX_VARIABLES`` variables only those whose values' rank
    correlates most (|Spearman rho|) with the trial's mean are kept; the rest are named as skipped.
    """
    import numpy as np

    kinds = {v.name: v for v in spec.variables}
    wide = [n for n in names if kinds[n].kind == "choice" and len(kinds[n].choices) > MAX_LEVELS]
    notes = []
    if wide:
        shown = ", ".join(f"{n} ({len(kinds[n].choices)} levels)" for n in wide[:3])
        more = f" and {len(wide) - 3} more" if len(wide) > 3 else ""
        notes.append(f"left out of the importance analysis: {shown}{more}, over {MAX_LEVELS} levels")
        names = [n for n in names if n not in wide]
    if len(names) > MAX_VARIABLES and len(means) > 2:
        numeric = {n for n in names if kinds[n].kind in ("int", "float")}
        rho = _rank_correlations(firsts[names], means, numeric)
        keep = {names[i] for i in np.argsort(-rho, kind="stable")[:MAX_VARIABLES]}
        notes.append(
            f"fANOVA saw the {MAX_VARIABLES} of {len(names)} variables whose rank correlates most with"
            " the metric (the others were screened out by that correlation)"
        )
        names = [n for n in names if n in keep]
    return names, "; ".join(notes)


def _rank_correlations(values: pd.DataFrame, target: pd.Series, numeric: set[str]) -> Any:
    """|Spearman rho| of each column with ``target`` (NaN, an inactive variable, counts as 0)."""
    import numpy as np
    import pandas as pd

    num = [n for n in values.columns if n in numeric]
    x = np.empty((len(values), len(values.columns)))
    at = {n: i for i, n in enumerate(values.columns)}
    if num:  # one conversion for every numeric column
        x[:, [at[n] for n in num]] = values[num].to_numpy(dtype="float64", na_value=np.nan)
    for name in values.columns:
        if name not in numeric:  # choices: their level's position, in sorted order
            col = values[name]
            codes, _ = pd.factorize(col.astype(str).where(col.notna()), sort=True)
            x[:, at[name]] = np.where(codes < 0, np.nan, codes)
    ranks = pd.DataFrame(x).rank().to_numpy()
    ranks = np.where(np.isnan(ranks), np.nanmean(ranks, axis=0), ranks)
    y = target.rank().to_numpy()
    dx, dy = ranks - ranks.mean(axis=0), y - y.mean()
    den = np.sqrt((dx**2).sum(axis=0) * (dy**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.abs((dx * dy[:, None]).sum(axis=0) / den)
    return np.nan_to_num(rho)


def _evaluator(seed: int) -> tuple[Any, str, str]:
    """fANOVA (which fits a scikit-learn forest), or PED-ANOVA when scikit-learn is missing."""
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    try:
        import sklearn  # noqa: F401

        evaluator: Any = FanovaImportanceEvaluator(n_trees=FANOVA_TREES, seed=seed)
        method, note = "fANOVA", ""
    except ImportError:
        evaluator = PedAnovaImportanceEvaluator()
        method = "PED-ANOVA"
        note = (
            "scikit-learn is not installed, so PED-ANOVA stands in for fANOVA "
            "(pip install scikit-learn for fANOVA)"
        )

    def evaluate(study: Any) -> dict[str, float]:
        return {k: float(v) for k, v in evaluator.evaluate(study).items()}

    return evaluate, method, note


def _study(rows: list[tuple[dict[str, Any], float]], variables: list[Any], direction: str) -> Any:
    """An in-memory Optuna study holding one finished trial per (params, value) row."""
    import logging

    import optuna

    from sweeper.search.space import distributions

    optuna.logging.set_verbosity(logging.WARNING)
    study = optuna.create_study(direction=optuna.study.StudyDirection[direction.upper()])
    every = distributions(variables, {x.name: None for x in variables})  # built once, shared by the trials
    trials = []
    for params, value in rows:
        keep = {k: v for k, v in params.items() if k in every}
        trials.append(
            optuna.trial.create_trial(params=keep, distributions={k: every[k] for k in keep}, value=value)
        )
    study.add_trials(trials)
    return study


def _param(v: Any, raw: Any) -> Any:
    """A table cell back as the Optuna param value (choices by identity, numbers by kind)."""
    if v.kind == "choice":
        for c in v.choices:  # at most MAX_LEVELS of them (_bounded)
            if c == raw or str(c) == str(raw):
                return c
        return raw
    if v.kind == "int":
        return int(raw)
    return float(raw)
