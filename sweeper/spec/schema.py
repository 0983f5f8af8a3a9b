"""The sweep file's root: its top-level keys in file order, and the rules across keys.

The file format lives in this package, one module per concept: :mod:`~sweeper.spec.block` (the strict
base and shared values), :mod:`~sweeper.spec.variables`, :mod:`~sweeper.spec.search` (metrics, search,
replicates, pruner), :mod:`~sweeper.spec.resources` (resources, components, tracking, Slurm) and
:mod:`~sweeper.spec.compare`. The JSON Schema editors use (``sweeper schema``, ``sweep.schema.json``)
and README's key tables come from the models' descriptions. Validation is strict ("5" and true are not
numbers) and pure: no file is opened and nothing is imported (``workdir`` and the objective are checked
at launch). Per-field rules raise :func:`~sweeper.spec.block.rule`; the cross-field rules (conditional
variables refer to variables above them, compare levels exist, placeholders are known, names do not
clash) are :class:`Sweep`'s validator, which reports all of them at once; :mod:`sweeper.spec.messages`
words pydantic's errors.
"""

from __future__ import annotations

import difflib
import string
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, PlainValidator, WithJsonSchema, model_validator
from pydantic_core import InitErrorDetails

from sweeper.spec.block import (
    MAX_REPLICATES,
    Block,
    Count,
    Duration,
    Loc,
    Target,
    fail_all,
    identifier,
    issue,
    kind,
    rule,
)
from sweeper.spec.compare import Compare, check_compare
from sweeper.spec.experiment import COMMAND_FIELDS, EXPERIMENT_RE, safe_experiment_name
from sweeper.spec.methods import METHODS, is_enumerated
from sweeper.spec.resources import Components, Resources, Slurm, Tracking, underscores
from sweeper.spec.search import Metrics, Pruner, Replicates, Search
from sweeper.spec.variables import Choice, Const, FloatRange, IntRange, VariableBody, conditional


def _experiment(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise rule(f"expected text, got {kind(value)}", "write a non-empty string")
    name = value.strip()
    if not safe_experiment_name(name):
        raise rule(
            f"{name[:140]!r} is not a safe folder name",
            "use letters, digits, '.', '_' and '-' only, at most 128 characters"
            " (it names the results folder)",
        )
    return name


class Sweep(Block):
    """A sweep file: one experiment, its metrics, its variable space and how to run it."""

    experiment: Annotated[
        Any, PlainValidator(_experiment), WithJsonSchema({"type": "string", "pattern": EXPERIMENT_RE.pattern})
    ] = Field(
        description="The name: letters, digits, `.`, `_`, `-` (at most 128); it names the results folder "
        "`<results>/<experiment>/`."
    )
    hypothesis: str | None = Field(
        None, description="Free text, kept with the results; `compare:` states the comparison that tests it."
    )
    objective: Target | None = Field(
        None,
        description="`module:function`, found next to the sweep file (a spec given in Python: the current "
        "folder) or on PYTHONPATH. The function needs no import of sweeper: it gets the trial's variables as "
        "keyword arguments (plus `seed` if it has a `seed` parameter) and returns a number (the primary "
        "metric) or a dict of metrics.",
    )
    command: Annotated[
        Any,
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": ["string", "number"]}}]}
        ),
    ] = Field(
        None,
        description="A program run per run instead of `objective:`: a command line or a list of arguments, "
        "with `{lr}`, `{seed}`, `{trial}`, `{replicate}`, `{trial_dir}` filled in (README: *Command-line "
        "objectives*).",
    )
    workdir: str | None = Field(
        None, description="Where `command` runs, relative to the sweep file's folder (default: that folder)."
    )
    shell: bool | None = Field(
        None,
        description="Run `command` through a shell, its values quoted (default: no shell, so values cannot "
        "inject commands).",
    )
    metrics: Metrics = Field(
        description="A list of `name: maximize|minimize`; the first is primary (searched on), the others are "
        "recorded."
    )
    variables: Annotated[dict[Annotated[str, identifier("variable")], VariableBody], Field(min_length=1)] = (
        Field(
            description="name: `{choice: [...]}` (text, numbers or booleans), `{int: [low, high]}`, "
            "`{float: [low, high]}` (with `log: true` or `step:`), `{const: v}` or a bare value. "
            "`when: {var: value}` (or a list of values) makes a variable conditional on variables declared "
            "above it; inactive variables are not passed to the objective (give the parameter a default) "
            "and are null in the table."
        )
    )
    search: Search = Field(
        Search(),
        description="How the space is searched: `method`, `trials`, `seed`, `deterministic`, `concurrency`.",
    )
    replicates: Replicates = Field(
        1,
        description="Seeded runs per trial (default 1); the value told to the search is their mean. "
        "`{min: 2, max: 10}` races them (README: *Adaptive replicates*); `{data: 5, init: 2}` runs seed "
        "factors (every combination; names must not clash with variables, columns, `min` or `max`). "
        f"At most {MAX_REPLICATES:,} per trial.",
    )
    resources: Resources = Field(
        Resources(),
        description="Per run: `cpus` (default 1), `gpus` (fractions share a GPU: 0.25 = four runs per GPU), "
        "`memory` (bytes or `4GB`), `custom` (Ray custom resources); an amount may depend on the variables "
        "(README: *Resources*).",
    )
    compare: Compare | None = Field(
        None,
        description="The comparison the hypothesis makes: `{variable: model, treatment: custom, baseline: "
        "resnet50}` (README: *The comparison*).",
    )
    timeout: Duration | None = Field(
        None,
        description="Per run: `90s`, `30m`, `2h`, `1h30m` or seconds. A run past it, counted from its own "
        "start, is stopped and recorded as `timeout` (on every backend; the worker interrupts Python code "
        "with SIGALRM). A run stuck in native code that cannot be interrupted is killed by the driver later, "
        "at submission + twice the timeout (at least + 30 s; ray backend).",
    )
    max_failures: Count | None = Field(
        None,
        description="Stop launching runs once this many runs have `failed` or hit `timeout`; the sweep ends "
        "cleanly with a message (exit code 2). Independently, a sweep whose first 5 runs (from at least 2 "
        "trials, before any run worked) all fail with the same error stops at once (README: *Failed runs*).",
    )
    pruner: Pruner | None = Field(
        None,
        description="Early stopping with an Optuna pruner, judged per trial over its replicates: a method "
        "name, or `{method: median, n_startup_trials: 5}` (README: *Pruning*).",
    )
    components: Components | None = Field(
        None,
        description="Datasets, shared jobs and metadata every trial uses: `name: {path|job|value, kind}` "
        "(README: *Components*).",
    )
    slurm: Annotated[Slurm, BeforeValidator(underscores, json_schema_input_type=Slurm)] | None = Field(
        None,
        description="How `sweeper launch --slurm` asks for nodes; a profile < this block < command-line "
        "flags (README: *Running on a cluster*).",
    )
    tracking: Tracking | None = Field(
        None,
        description="`{mlflow: {uri: http://127.0.0.1:5000, experiment: NAME}}`: mirror what the driver "
        "records to MLflow (`experiment` defaults to the sweep's name).",
    )

    @model_validator(mode="after")
    def _cross(self) -> Sweep:
        issues: list[InitErrorDetails] = []

        def bad(loc: Loc, problem: str, fix: str) -> None:
            issues.append(issue(loc, rule(problem, fix)))

        given = self.model_fields_set
        if ("objective" in given and self.objective is not None) == (
            "command" in given and self.command is not None
        ):
            bad(
                ("objective",),
                "give exactly one of objective: (a Python function) or command: (a program)",
                "write objective: module:function, or command: python train.py --lr {lr} --seed {seed}",
            )
        for key in ("workdir", "shell"):
            if key in given and self.command is None:
                bad((key,), "only applies to command:", f"drop {key}:, or use command: instead of objective:")
        known: dict[str, Any] = {}
        for var, body in self.variables.items():
            if conditional(body):
                self._when(("variables", var, "when"), body.when, known, var, bad)  # type: ignore[arg-type]
            known[var] = body
        for amount, cases in self._cases():
            for loc, case in cases:
                if case.when:
                    self._when(("resources", *amount, *loc, "when"), case.when, known, None, bad)
        self._search(bad)
        self._names(bad)
        if self.command is not None:
            self._command(bad)
        if self.compare is not None:
            check_compare(self.compare, self.variables, list(self.metrics), bad)
        fail_all("Sweep", issues)
        return self

    def _when(
        self, at: Loc, when: dict[str, list[Any]], known: dict[str, Any], this: str | None, bad: Any
    ) -> None:
        for ref, values in when.items():
            if ref not in known:
                where = f"declared before {this!r}" if this else "of this sweep"
                bad(
                    (*at, ref),
                    f"names no variable {where}",
                    f"declare {ref!r} above it (known: {', '.join(known) or 'none'})",
                )
                continue
            target = known[ref]
            for value in values:
                if isinstance(target, Choice) and value not in target.choice:
                    bad(
                        (*at, ref),
                        f"{value!r} is not one of {target.choice}",
                        "use one of the listed choices",
                    )

    def _cases(self) -> list[tuple[Loc, list[tuple[Loc, Any]]]]:
        out: list[tuple[Loc, list[tuple[Loc, Any]]]] = []
        amounts: list[tuple[Loc, Any]] = [
            (("cpus",), self.resources.cpus),
            (("gpus",), self.resources.gpus),
            (("memory",), self.resources.memory),
        ]
        amounts += [(("custom", k), v) for k, v in self.resources.custom.items()]
        for key, amount in amounts:
            if isinstance(amount, list):
                out.append((key, [((i,), c) for i, c in enumerate(amount)]))
            elif isinstance(amount, Block):
                out.append((key, [((), amount)]))
        return out

    def _search(self, bad: Any) -> None:
        method = self.search.method
        multi = METHODS[method].multi_objective
        if self.search.trials is None and not is_enumerated(method):
            bad(("search", "trials"), f"method {method} needs a budget", "add trials: N to search:")
        if is_enumerated(method):
            for var, body in self.variables.items():
                if isinstance(body, FloatRange) and body.step is None:
                    bad(
                        ("variables", var),
                        f"{method} cannot enumerate a continuous float range",
                        "add step: to the range, make it a choice, or use method: random / tpe",
                    )
        if multi and len(self.metrics) < 2:
            bad(
                ("search", "method"),
                f"{method} is multi-objective and needs two or more metrics",
                "add a metric, or use tpe for one metric",
            )
        if self.pruner is not None and multi:
            bad(
                ("pruner",),
                f"Optuna's pruners do not work with multi-objective search ({method})",
                "drop pruner:, or search one metric with tpe",
            )

    def _names(self, bad: Any) -> None:
        taken = {*self.variables, "seed", "trial", "replicate"}
        for comp in self.components or {}:
            if comp in taken:
                bad(
                    ("components", comp),
                    f"{comp!r} is already a variable or a run argument",
                    "rename the component",
                )
        if isinstance(self.replicates, dict):
            clash = {*self.variables, *(self.components or {}), "min", "max"}
            for factor in self.replicates:
                if factor in clash:
                    bad(
                        ("replicates", factor),
                        f"seed factor {factor!r} clashes with a variable, a component or min/max",
                        "rename the factor",
                    )

    def _command(self, bad: Any) -> None:
        import shlex

        raw = self.command
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
        samples.update({c: ["/a/path"] for c in self.components or {}})
        optional: set[str] = set()
        for var, body in self.variables.items():
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
            if var == "trial_dir" or (self.components and "trial_dir" in self.components):
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


def json_schema() -> dict[str, Any]:
    """The JSON Schema editors check a sweep file against (``sweeper schema``, ``sweep.schema.json``)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **Sweep.model_json_schema(),
        "title": "sweeper sweep file",
    }
