"""The rules across a sweep file's keys, checked once it has the shape of
:class:`~sweeper.spec.schema.Sweep`: conditional variables refer to variables above them, compare
levels exist, command placeholders are known and format, names do not clash. Every broken one is
reported at once, with the per-field mistakes' wording (:func:`~sweeper.spec.block.rule`)."""

from __future__ import annotations

import difflib
import shlex
import string
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import InitErrorDetails

from sweeper.spec.block import Block, Loc, hint, issue, kind, rule
from sweeper.spec.experiment import COMMAND_FIELDS
from sweeper.spec.messages import clean
from sweeper.spec.methods import METHODS, is_enumerated
from sweeper.spec.schema import Choice, Compare, Const, FloatRange, IntRange, Sweep, conditional

Bad = Callable[[Loc, str, str], None]  # records a broken rule: where, the problem, the fix


def across(s: Sweep) -> list[InitErrorDetails]:
    """Every rule across keys that ``s`` breaks, in the order they are checked."""
    issues: list[InitErrorDetails] = []

    def bad(loc: Loc, problem: str, fix: str) -> None:
        issues.append(issue(loc, rule(problem, fix)))

    given = s.model_fields_set
    if ("objective" in given and s.objective is not None) == ("command" in given and s.command is not None):
        bad(
            ("objective",),
            "give exactly one of objective: (a Python function) or command: (a program)",
            "write objective: module:function, or command: python train.py --lr {lr} --seed {seed}",
        )
    for key in ("workdir", "shell"):
        if key in given and s.command is None:
            bad((key,), "only applies to command:", f"drop {key}:, or use command: instead of objective:")
    known: dict[str, Any] = {}
    for var, body in s.variables.items():
        if conditional(body):
            _when(("variables", var, "when"), body.when, known, var, bad)  # type: ignore[arg-type]
        known[var] = body
    for amount, cases in _cases(s):
        for loc, case in cases:
            if case.when:
                _when(("resources", *amount, *loc, "when"), case.when, known, None, bad)
    _search(s, bad)
    _names(s, bad)
    if s.command is not None:
        _command(s, bad)
    if s.compare is not None:
        check_compare(s.compare, s.variables, list(s.metrics), bad)
    return issues


# Where a broken entry of a block can stand in for a neutral one (same name, no rule of its own),
# so that the rules across keys can still be checked around it.
STAND_INS: dict[str, Any] = {"variables": 0, "components": {"value": None}, "metrics": "maximize"}


def despite(data: dict[str, Any], exc: ValidationError) -> list[InitErrorDetails]:
    """The rules across keys broken among the valid parts of a file whose fields have mistakes
    (``exc``), so that one pass reports both. A broken block is left out, a broken variable,
    component or metric stands in as a neutral entry of the same name, and a rule that reads a
    left-out or stand-in part is not reported: it could be a guess. Empty when the file is too broken
    to tell (a required block itself is wrong)."""
    spared, gone = dict(data), set()
    for e in exc.errors():
        loc = clean(e["loc"])
        if len(loc) >= 2 and loc[0] in STAND_INS:
            spared[loc[0]] = _stand_in(spared.get(loc[0]), loc[1], STAND_INS[loc[0]])
            gone.add(loc[:2])
            continue
        if loc and loc[0] == "experiment":
            spared["experiment"] = "x"  # no rule reads the name
        elif loc and loc[0] not in ("variables", "metrics"):
            spared.pop(loc[0], None)
        else:
            return []
        gone.add(loc[:1])
    try:
        sweep = Sweep.model_validate(spared)
    except ValidationError:
        return []
    entries = any(g[0] in ("variables", "components") for g in gone)  # what command samples
    return [
        i
        for i in across(sweep)
        if not any(i["loc"][: len(g)] == g for g in gone) and not (entries and i["loc"][0] == "command")
    ]


def _stand_in(block: Any, name: Any, neutral: Any) -> Any:
    """``block`` with its entry ``name`` replaced (metrics also come as a list of one-key mappings)."""
    if isinstance(block, dict):
        return {**block, name: neutral}
    if isinstance(block, list):
        return [
            {k: neutral if k == name else v for k, v in m.items()} if isinstance(m, dict) else m
            for m in block
        ]
    return block


def _when(at: Loc, when: dict[str, list[Any]], known: dict[str, Any], this: str | None, bad: Bad) -> None:
    for ref, values in when.items():
        if ref not in known:
            where = f"declared before {this!r}" if this else "of this sweep"
            bad(
                (*at, ref),
                f"names no variable {where}",
                f"{hint(ref, list(known))}declare {ref!r} above it (known: {', '.join(known) or 'none'})",
            )
            continue
        target = known[ref]
        for value in values:
            if isinstance(target, Choice) and value not in target.choice:
                bad(
                    (*at, ref),
                    f"{value!r} is not one of {target.choice}",
                    f"{_close(value, target.choice)}use one of the listed choices",
                )


def _cases(s: Sweep) -> list[tuple[Loc, list[tuple[Loc, Any]]]]:
    out: list[tuple[Loc, list[tuple[Loc, Any]]]] = []
    amounts: list[tuple[Loc, Any]] = [
        (("cpus",), s.resources.cpus),
        (("gpus",), s.resources.gpus),
        (("memory",), s.resources.memory),
    ]
    amounts += [(("custom", k), v) for k, v in s.resources.custom.items()]
    for key, amount in amounts:
        if isinstance(amount, list):
            out.append((key, [((i,), c) for i, c in enumerate(amount)]))
        elif isinstance(amount, Block):
            out.append((key, [((), amount)]))
    return out


def _search(s: Sweep, bad: Bad) -> None:
    method = s.search.method
    multi = METHODS[method].multi_objective
    if s.search.trials is None and not is_enumerated(method):
        bad(("search", "trials"), f"method {method} needs a budget", "add trials: N to search:")
    if is_enumerated(method):
        for var, body in s.variables.items():
            if isinstance(body, FloatRange) and body.step is None:
                bad(
                    ("variables", var),
                    f"{method} cannot enumerate a continuous float range",
                    "add step: to the range, make it a choice, or use method: random / tpe",
                )
    if multi and len(s.metrics) < 2:
        bad(
            ("search", "method"),
            f"{method} is multi-objective and needs two or more metrics",
            "add a metric, or use tpe for one metric",
        )
    if s.pruner is not None and multi:
        bad(
            ("pruner",),
            f"Optuna's pruners do not work with multi-objective search ({method})",
            "drop pruner:, or search one metric with tpe",
        )


def _names(s: Sweep, bad: Bad) -> None:
    taken = {*s.variables, "seed", "trial", "replicate"}
    for comp in s.components or {}:
        if comp in taken:
            bad(
                ("components", comp),
                f"{comp!r} is already a variable or a run argument",
                "rename the component",
            )
    if isinstance(s.replicates, dict):
        clash = {*s.variables, *(s.components or {}), "min", "max"}
        for factor in s.replicates:
            if factor in clash:
                bad(
                    ("replicates", factor),
                    f"seed factor {factor!r} clashes with a variable, a component or min/max",
                    "rename the factor",
                )


def _command(s: Sweep, bad: Bad) -> None:

    raw = s.command
    argv: list[str] = []
    if (
        isinstance(raw, list)
        and raw
        and all(isinstance(t, str | int | float) and not isinstance(t, bool) for t in raw)
    ):
        argv = [str(t) for t in raw]
    elif isinstance(raw, str) and raw.strip():
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            bad(("command",), f"cannot split into arguments: {exc}", "close the quote")
            return
    else:
        bad(
            ("command",),
            f"expected a command line or a list of arguments, got {kind(raw)}",
            "write e.g. command: python train.py --lr {lr} --seed {seed}",
        )
        return
    samples: dict[str, list[Any]] = {f: [0] for f in ("seed", "trial", "replicate")}
    samples["trial_dir"] = ["/trial/dir"]
    samples.update({c: ["/a/path"] for c in s.components or {}})
    optional: set[str] = set()
    for var, body in s.variables.items():
        samples[var] = (
            body.choice
            if isinstance(body, Choice)
            else [body.bounds[0], body.bounds[1]]
            if isinstance(body, IntRange | FloatRange)
            else [body.const]
            if isinstance(body, Const)
            else [body]
        )
        if conditional(body):
            optional.add(var)
        if var == "trial_dir" or (s.components and "trial_dir" in s.components):
            bad(
                ("variables", "trial_dir"),
                "'trial_dir' is taken by command objectives",
                "rename the variable",
            )
    fields = ", ".join("{" + k + "}" for k in COMMAND_FIELDS)
    form = string.Formatter()
    for token in argv:
        try:
            parts = [(f, spec, conv) for _, f, spec, conv in form.parse(token) if f is not None]
        except ValueError as exc:
            bad(
                ("command",),
                f"bad placeholder in {token!r}: {exc}",
                "write placeholders as {name}; double braces {{ }} for literal ones",
            )
            continue
        for f, spec, conv in parts:
            if f in optional:
                bad(
                    ("command",),
                    f"{{{f}}} is a conditional variable, absent when inactive",
                    f"read it from the environment (SWEEPER_{f.upper()}, unset when inactive)",
                )
            elif f not in samples:
                close = difflib.get_close_matches(f, sorted(samples), n=1)
                hint = f"did you mean {{{close[0]}}}? " if close else ""
                bad(
                    ("command",),
                    f"placeholder {{{f}}} names nothing",
                    f"{hint}use a variable, a component, or one of {fields}",
                )
            else:
                try:
                    for value in samples[f]:
                        form.format_field(form.convert_field(value, conv), spec or "")
                except (ValueError, TypeError) as exc:
                    bad(
                        ("command",),
                        f"{{{f}{'!' + conv if conv else ''}:{spec}}} cannot format {value!r}: {exc}",
                        "use a format spec that fits the values, e.g. {lr:.4g}, or none",
                    )


def _close(value: Any, choices: list[Any]) -> str:
    """``did you mean`` for a level spelled close to a choice (text only: 10 is not a typo of 100)."""
    return hint(value, [c for c in choices if isinstance(c, str)]) if isinstance(value, str) else ""


def treatment_levels(c: Compare, target: Any) -> tuple[Any, ...]:
    """The treatment's levels; () for all (unless all is itself a level of the variable)."""
    if c.treatment == "all" and not (isinstance(target, Choice) and "all" in target.choice):
        return ()
    return tuple(c.treatment) if isinstance(c.treatment, list) else (c.treatment,)


def check_compare(c: Compare, variables: dict[str, Any], metrics: list[str], bad: Bad) -> None:
    """The rules across compare: and the rest: its variable, levels, metric and blocks exist and fit."""
    target = variables.get(c.variable)
    if target is None:
        bad(
            ("compare", "variable"),
            f"{c.variable!r} is not a variable",
            f"{hint(c.variable, list(variables))}use one of {', '.join(variables)}",
        )
    else:
        levels = treatment_levels(c, target)
        for key, value in [("baseline", c.baseline)] + [("treatment", t) for t in levels]:
            if isinstance(target, Choice) and value not in target.choice:
                bad(
                    ("compare", key),
                    f"{value!r} is not one of {target.choice}",
                    f"{_close(value, target.choice)}use one of the variable's choices",
                )
        if c.baseline in levels:
            bad(
                ("compare", "treatment"),
                f"the baseline {c.baseline!r} is also a treatment",
                "compare the baseline against other levels only",
            )
    metric = c.metric if c.metric is not None else next(iter(metrics))
    if metric not in metrics:
        bad(
            ("compare", "metric"),
            f"{metric!r} is not a metric",
            f"{hint(metric, metrics)}use one of {', '.join(metrics)}",
        )
    for block in c.within:
        body = variables.get(block)
        if body is None or block == c.variable or conditional(body):
            why = (
                "is not a variable"
                if body is None
                else "is the compared variable"
                if block == c.variable
                else "is conditional"
            )
            bad(
                ("compare", "within"),
                f"{block!r} {why}",
                "block on variables every trial has, other than compare.variable",
            )
