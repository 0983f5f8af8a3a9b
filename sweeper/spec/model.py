"""The experiment as sweep files state it: parsed, validated once, frozen.

Everything downstream (search, engine, results, analysis) reads these dataclasses and never the raw
YAML, so every rule about user input lives here and fails early with file, field and fix.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sweeper.errors import SpecError
from sweeper.results import schema
from sweeper.results.schema import ComponentKind
from sweeper.search.methods import METHODS as SEARCH_METHODS
from sweeper.search.methods import Method, is_enumerated
from sweeper.spec.slurm import SlurmOptions, parse_options

DIRECTIONS = ("maximize", "minimize")
METHODS = tuple(SEARCH_METHODS)  # the search stage's registry is the one list of methods
# Columns of the trial and history tables that variables and metrics must not shadow.
RESERVED = schema.RESERVED
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXPERIMENT_RE = schema.EXPERIMENT_RE

Scalar = str | int | float | bool
Direction = Literal["maximize", "minimize"]
Arms = Literal["best", "pooled"]  # which trials stand for a level of the comparison


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    direction: Direction


@dataclass(frozen=True, slots=True)
class Variable:
    """One controllable factor. ``kind`` is choice, int, float or const.

    ``when`` maps earlier variables to the values that make this one active (all must match).
    """

    name: str
    kind: str
    choices: tuple[Scalar, ...] = ()
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    value: Scalar | None = None
    when: tuple[tuple[str, tuple[Scalar, ...]], ...] = ()

    def active(self, params: Mapping[str, Any]) -> bool:
        """Whether this variable takes part in a trial whose earlier variables are ``params``."""
        return all(name in params and params[name] in allowed for name, allowed in self.when)


@dataclass(frozen=True, slots=True)
class Search:
    method: Method = "tpe"
    trials: int | None = None
    seed: int = 0
    deterministic: bool = False
    # Trials in flight in deterministic mode: fixed so that reruns on any cluster size agree.
    concurrency: int = 4


@dataclass(frozen=True, slots=True)
class ResourceCase:
    """``key`` (cpus, gpus, memory or custom.NAME) is ``value`` for runs whose variables match ``when``."""

    key: str
    when: tuple[tuple[str, tuple[Scalar, ...]], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Resources:
    """What one run needs. ``cases`` make an amount depend on the run's variables: the first case
    of a key whose ``when`` matches wins, else the plain amount applies (README, "Resources")."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None  # bytes
    custom: tuple[tuple[str, float], ...] = ()
    cases: tuple[ResourceCase, ...] = ()

    def resolve(self, params: Mapping[str, Any]) -> Resources:
        """The plain amounts (no cases) that a run with these variables asks for."""
        if not self.cases:
            return self
        chosen: dict[str, float] = {}
        for case in self.cases:
            if case.key not in chosen and all(
                name in params and params[name] in allowed for name, allowed in case.when
            ):
                chosen[case.key] = case.value
        return self._with(chosen)

    def shapes(self) -> list[Resources]:
        """Every plain resource set a run can ask for (each key's cases combined), for checks."""
        import itertools

        keys = sorted({c.key for c in self.cases})
        options = [[None, *(c.value for c in self.cases if c.key == k)] for k in keys]
        out = [
            self._with({k: v for k, v in zip(keys, combo, strict=True) if v is not None})
            for combo in itertools.product(*options)
        ]
        return list(dict.fromkeys(out))

    def _with(self, chosen: Mapping[str, float]) -> Resources:
        memory = chosen.get("memory", self.memory)
        return Resources(
            chosen.get("cpus", self.cpus),
            chosen.get("gpus", self.gpus),
            int(memory) if memory else None,
            tuple((k, chosen.get(f"custom.{k}", v)) for k, v in self.custom),
        )


@dataclass(frozen=True, slots=True)
class Compare:
    """The comparison a hypothesis makes: ``treatment`` against ``baseline`` on ``variable``.

    ``treatment`` is one level, a tuple of levels, or None for every level but the baseline (many
    arms: the report then corrects for multiple comparisons). ``arms`` says which trials stand for a
    level: ``best`` (its best trial, tuned against tuned) or ``pooled`` (all its trials, averaged
    per seed).
    """

    variable: str
    treatment: Scalar | tuple[Scalar, ...] | None
    baseline: Scalar
    metric: str
    alpha: float = 0.05
    arms: Arms = "best"
    within: tuple[str, ...] = ()  # blocking variables (datasets, tasks): one verdict per setting
    confirm: Confirm | None = None  # rerun the chosen configurations on fresh seeds
    rope: float | None = None  # region of practical equivalence, in metric units
    correlation: float | None = None  # correlation of replicates (cross-validation folds)


@dataclass(frozen=True, slots=True)
class Confirm:
    """The confirmation stage: each arm's ``top`` best configurations rerun on ``replicates`` fresh seeds."""

    replicates: int
    top: int = 1


@dataclass(frozen=True, slots=True)
class Command:
    """A program run once per run instead of a Python function (sweeper.run.command).

    ``argv`` are the template's tokens, each formatted with the run's values ({lr}, {seed}, ...);
    no shell is involved unless ``shell``, so values cannot inject commands.
    """

    argv: tuple[str, ...]
    workdir: str  # absolute
    shell: bool = False
    template: str = ""  # the command line as written (what ``shell: true`` formats)


@dataclass(frozen=True, slots=True)
class Pruner:
    method: str  # one of PRUNERS
    options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of the Optuna pruner


@dataclass(frozen=True, slots=True)
class Component:
    """A declared input of every trial: a file or folder (``path``), the output of a ``job`` run once
    before the trials, or a metadata record (``value``)."""

    name: str
    kind: ComponentKind
    path: str | None = None  # absolute
    job: str | None = None  # module:function
    value: Any = None


@dataclass(frozen=True, slots=True)
class Racing:
    """Adaptive replicates: every trial starts with ``min`` and contenders grow up to ``max``."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class SeedFactor:
    """One seed stream of a factorial replicate design (``replicates: {data: 5, init: 2}``)."""

    name: str
    n: int


@dataclass(frozen=True, slots=True)
class Tracking:
    """Where the driver mirrors what it records: an MLflow tracking server."""

    mlflow_uri: str
    mlflow_experiment: str | None = None  # defaults to the experiment's name


@dataclass(frozen=True, slots=True)
class Experiment:
    name: str
    objective: str | None  # module:function, or None when ``command`` runs a program
    metrics: tuple[Metric, ...]
    variables: tuple[Variable, ...]
    search: Search = field(default_factory=Search)
    replicates: int = 1  # the most replicates a trial can have (racing: max; factors: their product)
    racing: Racing | None = None
    factors: tuple[SeedFactor, ...] = ()
    resources: Resources = field(default_factory=Resources)
    hypothesis: str = ""
    compare: Compare | None = None
    timeout: float | None = None  # seconds one run may take before it is killed (ray backend)
    max_failures: int | None = None  # failed or timed-out runs after which the sweep stops
    source: str = "<dict>"  # the sweep file, for messages
    root: str = "."  # folder the objective's module is looked up in first
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)  # as given, for experiment.json
    slurm: SlurmOptions | None = None  # the `slurm:` block: how `launch --slurm` asks for nodes
    command: Command | None = None
    pruner: Pruner | None = None
    components: tuple[Component, ...] = ()
    tracking: Tracking | None = None

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    def variable(self, name: str) -> Variable:
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)


# method -> the options each accepts (the keyword arguments of its Optuna pruner)
PRUNERS: dict[str, tuple[str, ...]] = {
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": ("percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "successive_halving": ("min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
    "wilcoxon": ("p_threshold", "n_startup_steps"),
}
REQUIRED = {"percentile": ("percentile",)}


TOP_KEYS = (
    "experiment",
    "hypothesis",
    "objective",
    "metrics",
    "variables",
    "search",
    "replicates",
    "resources",
    "compare",
    "slurm",
    "timeout",
    "max_failures",
    "command",
    "workdir",
    "shell",
    "pruner",
    "components",
)
COMPONENT_KINDS = schema.COMPONENT_KINDS
# What a command template may name besides variables and components.
COMMAND_FIELDS = ("seed", "trial", "replicate", "trial_dir")


def load_spec(source: str | Path | Mapping[str, Any], *, root: str | Path | None = None) -> Experiment:
    """Parse a sweep file path or a spec dict into a validated :class:`Experiment`."""
    if isinstance(source, Mapping):
        return parse_spec(source, source_name="<dict>", root=str(root or Path.cwd()))
    path = Path(source)
    if not path.is_file():
        raise SpecError(
            "no such sweep file",
            source=str(path),
            fix="check the path; sweep files are YAML, e.g. sweeps/quickstart.yaml",
        )
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # yaml.YAMLError subclasses neither; see below
        raise SpecError(f"cannot read: {exc}", source=str(path), fix="save it as UTF-8 YAML") from None
    except RecursionError:
        raise SpecError(
            "nested too deeply to read",
            source=str(path),
            fix="a sweep file needs a few levels of nesting; check for runaway brackets",
        ) from None
    except Exception as exc:
        if type(exc).__module__.startswith("yaml"):
            raise SpecError(
                f"not valid YAML: {exc}", source=str(path), fix="fix the YAML syntax at the line shown"
            ) from None
        raise
    if not isinstance(data, Mapping):
        raise SpecError(
            "the file must hold a mapping of keys (experiment:, objective:, ...)",
            source=str(path),
            fix="start from sweeps/quickstart.yaml",
        )
    return parse_spec(data, source_name=str(path), root=str(root or path.resolve().parent))


def parse_spec(data: Mapping[str, Any], *, source_name: str, root: str) -> Experiment:
    p = _Parser(source_name)
    p.keys(data, TOP_KEYS, "", required=("experiment", "metrics", "variables"))
    name = p.string(data["experiment"], "experiment")
    if not EXPERIMENT_RE.fullmatch(name) or ".." in name:
        p.fail(
            "experiment",
            f"{name!r} is not a safe folder name",
            "use letters, digits, '.', '_' and '-' only (it names the results folder)",
        )
    if ("objective" in data) == ("command" in data):
        p.fail(
            "objective",
            "give exactly one of objective: (a Python function) or command: (a program)",
            "write objective: module:function, or command: python train.py --lr {lr} --seed {seed}",
        )
    objective = None
    if "objective" in data:
        objective = p.target(data["objective"], "objective")
        for key in ("workdir", "shell"):
            if key in data:
                p.fail(key, "only applies to command:", f"drop {key}:, or use command: instead of objective:")
    metrics = p.metrics(data["metrics"])
    variables = p.variables(data["variables"])
    components = p.components(data.get("components"), variables, root)
    command = None
    if "command" in data:
        command = p.command(data, variables, components, root)
    pruner = p.pruner(data.get("pruner"))
    search = p.search(data.get("search", {}), variables, metrics)
    replicates = p.integer(data.get("replicates", 1), "replicates", low=1)
    resources = p.resources(data.get("resources", {}), variables)
    compare = p.compare(data.get("compare"), variables, metrics)
    if pruner is not None and SEARCH_METHODS[search.method].multi_objective:
        p.fail(
            "pruner",
            "Optuna's pruners do not work with multi-objective search (nsga2)",
            "drop pruner:, or search one metric with tpe",
        )
    hypothesis = data.get("hypothesis", "") or ""
    if not isinstance(hypothesis, str):
        p.fail("hypothesis", "must be text", "write the hypothesis as one sentence")
    slurm = parse_options(data["slurm"], source=source_name) if "slurm" in data else None
    timeout = p.duration(data["timeout"], "timeout") if data.get("timeout") is not None else None
    max_failures = data.get("max_failures")
    if max_failures is not None:
        max_failures = p.integer(max_failures, "max_failures", low=1)
    return Experiment(
        name=name,
        objective=objective,
        metrics=metrics,
        variables=variables,
        search=search,
        replicates=replicates,
        resources=resources,
        hypothesis=hypothesis,
        compare=compare,
        timeout=timeout,
        max_failures=max_failures,
        source=source_name,
        root=root,
        raw=dict(data),
        slurm=slurm,
        command=command,
        pruner=pruner,
        components=components,
    )


class _Parser:
    """Validation helpers that know the source name, so every error says file, field and fix."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, field_: str, message: str, fix: str) -> None:
        raise SpecError(message, source=self.source, field=field_, fix=fix)

    def keys(self, data: Any, allowed: tuple[str, ...], where: str, required: tuple[str, ...] = ()) -> None:
        if not isinstance(data, Mapping):
            self.fail(
                where or "(top level)",
                f"expected a mapping, got {_kind(data)}",
                f"write it as key: value pairs; keys: {', '.join(allowed)}",
            )
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(
                    _join(where, str(key)), "unknown key", f"{hint}valid keys here: {', '.join(allowed)}"
                )
        for key in required:
            if key not in data:
                self.fail(_join(where, key), "missing", f"add {key}: (see README, 'Sweep file')")

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected text, got {_kind(value)}", "write a non-empty string")
        return str(value).strip()

    def number(self, value: Any, where: str, *, low: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(where, f"expected a finite number, got {value!r}", "write a number such as 1 or 0.5")
        if low is not None and value < low:
            self.fail(where, f"must be >= {low}, got {value!r}", f"use a value of at least {low}")
        return float(value)

    def integer(self, value: Any, where: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, f"expected a whole number, got {value!r}", "write an integer such as 5")
        if low is not None and value < low:
            self.fail(where, f"must be >= {low}, got {value!r}", f"use a value of at least {low}")
        return int(value)

    def duration(self, value: Any, where: str) -> float:
        """Seconds from 90, '90s', '30m', '2h' or '1h30m'."""
        seconds = _seconds(value) if isinstance(value, str) else value
        if seconds is None:
            self.fail(where, f"{value!r} is not a duration", "write e.g. 90s, 30m, 2h or 1h30m")
        return self.number(seconds, where, low=1e-3)

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"expected true or false, got {value!r}", "write true or false")
        return bool(value)

    def target(self, value: Any, where: str) -> str:
        target = self.string(value, where)
        if not re.match(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", target):
            self.fail(
                where,
                f"{target!r} is not module:function",
                "write it as module:function, e.g. models:train for train() in models.py",
            )
        return target

    def command(
        self,
        data: Mapping[str, Any],
        variables: tuple[Variable, ...],
        components: tuple[Component, ...],
        root: str,
    ) -> Command:
        import shlex
        import string

        raw = data["command"]
        if isinstance(raw, list) and raw and all(isinstance(t, str | int | float) for t in raw):
            argv = tuple(str(t) for t in raw)
            raw = " ".join(argv)
        elif isinstance(raw, str) and raw.strip():
            try:
                argv = tuple(shlex.split(raw))
            except ValueError as exc:
                self.fail("command", f"cannot split into arguments: {exc}", "close the quote")
        else:
            self.fail(
                "command",
                f"expected a command line or a list of arguments, got {_kind(raw)}",
                "write e.g. command: python train.py --lr {lr} --seed {seed}",
            )
        conditional = {v.name for v in variables if v.when}
        known = {v.name for v in variables} | {c.name for c in components} | set(COMMAND_FIELDS)
        for token in argv:
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(token) if f is not None]
            except ValueError as exc:
                self.fail(
                    "command",
                    f"bad placeholder in {token!r}: {exc}",
                    "write placeholders as {name}; double braces {{ }} for literal ones",
                )
            for f in fields:
                if f in conditional:
                    self.fail(
                        "command",
                        f"{{{f}}} is a conditional variable, absent when inactive",
                        f"read it from the environment (SWEEPER_{f.upper()}, unset when inactive)",
                    )
                if f not in known:
                    close = difflib.get_close_matches(f, sorted(known), n=1)
                    hint = f"did you mean {{{close[0]}}}? " if close else ""
                    self.fail(
                        "command",
                        f"placeholder {{{f}}} names nothing",
                        f"{hint}use a variable, a component, or one of "
                        f"{', '.join('{' + k + '}' for k in COMMAND_FIELDS)}",
                    )
        for name in ("trial_dir",):
            if name in {v.name for v in variables} | {c.name for c in components}:
                self.fail(
                    f"variables.{name}", f"{name!r} is taken by command objectives", "rename the variable"
                )
        workdir = Path(root)
        if "workdir" in data:
            workdir = (Path(root) / self.string(data["workdir"], "workdir")).resolve()
            if not workdir.is_dir():
                self.fail(
                    "workdir",
                    f"no such folder {workdir}",
                    "create it, or give a folder relative to the sweep file's folder",
                )
        shell = self.boolean(data.get("shell", False), "shell")
        return Command(argv, str(workdir), shell, raw.strip())

    def pruner(self, data: Any) -> Pruner | None:
        if data is None:
            return None
        if isinstance(data, str):
            data = {"method": data}
        if not isinstance(data, Mapping) or "method" not in data:
            self.fail(
                "pruner",
                "expected {method: ..., option: value, ...}",
                f"write e.g. pruner: {{method: median, n_startup_trials: 5}}; methods: {', '.join(PRUNERS)}",
            )
        method = data["method"]
        if not isinstance(method, str) or method not in PRUNERS:
            close = difflib.get_close_matches(str(method), PRUNERS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail("pruner.method", f"unknown pruner {method!r}", f"{hint}use one of {', '.join(PRUNERS)}")
        self.keys(data, ("method", *PRUNERS[method]), "pruner")
        for key in REQUIRED.get(method, ()):
            if key not in data:
                self.fail(f"pruner.{key}", f"the {method} pruner needs it", f"add {key}: to pruner:")
        options = []
        for key, value in data.items():
            if key == "method":
                continue
            if not (key in ("min_resource", "max_resource") and value == "auto"):
                self.number(value, f"pruner.{key}")
            options.append((str(key), value))
        return Pruner(str(method), tuple(options))

    def components(self, data: Any, variables: tuple[Variable, ...], root: str) -> tuple[Component, ...]:
        if data is None:
            return ()
        if not isinstance(data, Mapping):
            self.fail(
                "components",
                "expected a mapping of names to components",
                "write e.g. components: {train_data: {path: data/train.npz, kind: dataset}}",
            )
        taken = {v.name for v in variables} | {"seed", "trial", "replicate"}
        out = []
        for name, body in data.items():
            where = f"components.{name}"
            self.name(name, where, "component")
            if name in taken:
                self.fail(where, f"{name!r} is already a variable or a run argument", "rename the component")
            if isinstance(body, str):
                body = {"path": body}
            sources = [k for k in ("path", "job", "value") if isinstance(body, Mapping) and k in body]
            if len(sources) != 1:
                self.fail(
                    where,
                    "needs exactly one of path, job, value",
                    "e.g. {path: data/train.npz, kind: dataset}, {job: prep:make_features, "
                    "kind: dataset} or {value: {source: UCI}, kind: metadata}",
                )
            self.keys(body, ("path", "job", "value", "kind"), where)
            default = {"path": "dataset", "job": "dataset", "value": "metadata"}[sources[0]]
            kind = body.get("kind", default)
            if kind not in COMPONENT_KINDS:
                self.fail(
                    f"{where}.kind", f"unknown kind {kind!r}", f"use one of {', '.join(COMPONENT_KINDS)}"
                )
            if "path" in body:
                path = (Path(root) / self.string(body["path"], f"{where}.path")).resolve()
                out.append(Component(str(name), kind, path=str(path)))
            elif "job" in body:
                out.append(Component(str(name), kind, job=self.target(body["job"], f"{where}.job")))
            else:
                import json

                try:
                    json.dumps(body["value"], sort_keys=True)
                except (TypeError, ValueError):
                    self.fail(
                        f"{where}.value",
                        "must be plain data (text, numbers, lists, mappings)",
                        "write it as YAML data",
                    )
                out.append(Component(str(name), kind, value=body["value"]))
        return tuple(out)

    def metrics(self, data: Any) -> tuple[Metric, ...]:
        items: list[tuple[Any, Any]] = []
        if isinstance(data, Mapping):
            items = list(data.items())
        elif isinstance(data, list) and all(isinstance(m, Mapping) and len(m) == 1 for m in data):
            items = [next(iter(m.items())) for m in data]
        else:
            self.fail(
                "metrics",
                "expected a list of name: direction pairs",
                "write e.g.\n    metrics:\n      - accuracy: maximize\n      - seconds: minimize",
            )
        if not items:
            self.fail("metrics", "no metric given", "name at least one, e.g. - accuracy: maximize")
        seen: set[str] = set()
        out = []
        for name, direction in items:
            where = f"metrics.{name}"
            self.name(name, where, "metric")
            if name in seen:
                self.fail(where, "named twice", "give each metric once")
            seen.add(name)
            if direction not in DIRECTIONS:
                self.fail(
                    where,
                    f"direction {direction!r} is not maximize or minimize",
                    "write maximize or minimize",
                )
            out.append(Metric(name, direction))
        return tuple(out)

    def name(self, name: Any, where: str, what: str) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            self.fail(
                where,
                f"{what} name {name!r} is not an identifier",
                "use letters, digits and '_' (it becomes a column and a keyword argument)",
            )
        if name in RESERVED:
            self.fail(
                where,
                f"{what} name {name!r} clashes with a trial-table column",
                f"rename it; reserved: {', '.join(sorted(RESERVED))}",
            )

    def variables(self, data: Any) -> tuple[Variable, ...]:
        if not isinstance(data, Mapping) or not data:
            self.fail(
                "variables",
                "expected a mapping of variable names to definitions",
                "write e.g.\n    variables:\n      lr: {float: [1.0e-4, 1.0e-1], log: true}",
            )
        out: list[Variable] = []
        for name, body in data.items():
            where = f"variables.{name}"
            self.name(name, where, "variable")
            out.append(self.variable(str(name), body, where, out))
        return tuple(out)

    def variable(self, name: str, body: Any, where: str, earlier: list[Variable]) -> Variable:
        if not isinstance(body, Mapping):
            if isinstance(body, list):
                self.fail(
                    where, "a bare list is ambiguous", f"write {{choice: {body}}} to sweep over these values"
                )
            if not _is_scalar(body):
                self.fail(
                    where,
                    f"constant must be text, a number or a boolean, got {_kind(body)}",
                    "write a single value, or {choice: [...]} for several",
                )
            return Variable(name, "const", value=body)
        kinds = [k for k in ("choice", "int", "float", "const") if k in body]
        if len(kinds) != 1:
            self.fail(
                where,
                "needs exactly one of choice, int, float, const",
                "e.g. {choice: [a, b]}, {int: [1, 10]}, {float: [0.0, 1.0], log: false}",
            )
        kind = kinds[0]
        allowed = {
            "choice": ("choice", "when"),
            "const": ("const", "when"),
            "int": ("int", "step", "log", "when"),
            "float": ("float", "step", "log", "when"),
        }[kind]
        self.keys(body, allowed, where)
        when = self.when(body.get("when"), where, earlier)
        if kind == "const":
            if not _is_scalar(body["const"]):
                self.fail(f"{where}.const", "must be a single value", "write text, a number or a boolean")
            return Variable(name, "const", value=body["const"], when=when)
        if kind == "choice":
            choices = body["choice"]
            if not isinstance(choices, list) or not choices:
                self.fail(f"{where}.choice", "expected a non-empty list", "write e.g. {choice: [adam, sgd]}")
            for c in choices:
                if not _is_scalar(c):
                    self.fail(
                        f"{where}.choice",
                        f"choice {c!r} is not text, a number or a boolean",
                        "use simple values; map them to objects inside your objective",
                    )
            if len(set(map(repr, choices))) != len(choices):
                self.fail(f"{where}.choice", "a value is listed twice", "list each value once")
            return Variable(name, "choice", choices=tuple(choices), when=when)
        bounds = body[kind]
        if not isinstance(bounds, list) or len(bounds) != 2:
            self.fail(f"{where}.{kind}", "expected [low, high]", f"write e.g. {{{kind}: [1, 10]}}")
        conv = self.integer if kind == "int" else self.number
        low, high = (conv(b, f"{where}.{kind}") for b in bounds)
        if low > high:
            self.fail(f"{where}.{kind}", f"low > high ({low} > {high})", "swap the bounds: [low, high]")
        log = self.boolean(body.get("log", False), f"{where}.log")
        if log and low <= 0:
            self.fail(
                f"{where}.log",
                f"a log range needs low > 0, got {low}",
                "raise low above zero or drop log: true",
            )
        step = body.get("step")
        if step is not None:
            step = conv(step, f"{where}.step")
            if step <= 0:
                self.fail(f"{where}.step", "must be > 0", "use a positive step")
            if log:
                self.fail(
                    f"{where}.step", "step and log cannot be combined (Optuna refuses it)", "drop one of them"
                )
        return Variable(name, kind, low=low, high=high, step=step, log=log, when=when)

    def when(
        self, data: Any, where: str, earlier: list[Variable]
    ) -> tuple[tuple[str, tuple[Scalar, ...]], ...]:
        if data is None:
            return ()
        if not isinstance(data, Mapping) or not data:
            self.fail(
                f"{where}.when",
                "expected a mapping of variable: value(s)",
                "write e.g. when: {model: custom}",
            )
        known = {v.name: v for v in earlier}
        out = []
        for ref, values in data.items():
            if ref not in known:
                this = where.split(".")[-1]
                self.fail(
                    f"{where}.when.{ref}",
                    f"names no variable declared before {this!r}",
                    f"declare {ref!r} above this variable (known: {', '.join(known) or 'none'})",
                )
            allowed = tuple(values) if isinstance(values, list) else (values,)
            target = known[ref]
            for value in allowed:
                if target.kind == "choice" and value not in target.choices:
                    self.fail(
                        f"{where}.when.{ref}",
                        f"{value!r} is not one of {list(target.choices)}",
                        "use one of the listed choices",
                    )
            out.append((str(ref), allowed))
        return tuple(out)

    def search(self, data: Any, variables: tuple[Variable, ...], metrics: tuple[Metric, ...]) -> Search:
        self.keys(data, ("method", "trials", "seed", "deterministic", "concurrency"), "search")
        method = data.get("method", "tpe")
        if method not in METHODS:
            close = difflib.get_close_matches(str(method), METHODS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            self.fail("search.method", f"unknown method {method!r}", f"{hint}use one of {', '.join(METHODS)}")
        trials = data.get("trials")
        if trials is not None:
            trials = self.integer(trials, "search.trials", low=1)
        elif not is_enumerated(method):
            self.fail("search.trials", f"method {method} needs a budget", "add trials: N to search:")
        if is_enumerated(method):
            for v in variables:
                if v.kind == "float" and v.step is None:
                    self.fail(
                        f"variables.{v.name}",
                        f"{method} cannot enumerate a continuous float range",
                        "add step: to the range, make it a choice, or use method: random / tpe",
                    )
        if SEARCH_METHODS[method].multi_objective and len(metrics) < 2:
            self.fail(
                "search.method",
                "nsga2 is multi-objective and needs two or more metrics",
                "add a metric, or use tpe for one metric",
            )
        seed = self.integer(data.get("seed", 0), "search.seed", low=0)
        deterministic = self.boolean(data.get("deterministic", False), "search.deterministic")
        concurrency = self.integer(data.get("concurrency", 4), "search.concurrency", low=1)
        return Search(method, trials, seed, deterministic, concurrency)

    def resources(self, data: Any, variables: tuple[Variable, ...] = ()) -> Resources:
        self.keys(data, ("cpus", "gpus", "memory", "custom"), "resources")
        cases: list[ResourceCase] = []
        cpus = self.amount(data.get("cpus", 1.0), "resources.cpus", "cpus", variables, cases)
        gpus = self.amount(data.get("gpus", 0.0), "resources.gpus", "gpus", variables, cases)
        memory = data.get("memory")
        if memory is not None:
            memory = int(self.amount(memory, "resources.memory", "memory", variables, cases)) or None
        custom = data.get("custom", {}) or {}
        if not isinstance(custom, Mapping):
            self.fail(
                "resources.custom", "expected name: amount pairs", "write e.g. {accelerator_type_a100: 1}"
            )
        pairs = tuple(
            (str(k), self.amount(v, f"resources.custom.{k}", f"custom.{k}", variables, cases))
            for k, v in custom.items()
        )
        return Resources(cpus, gpus, memory, pairs, tuple(cases))

    def amount(
        self, data: Any, where: str, key: str, variables: tuple[Variable, ...], cases: list[ResourceCase]
    ) -> float:
        """A plain amount, or cases ``{when: {...}, value: N}`` (one, or a list in which an entry
        without ``when`` is the default). Appends the cases to ``cases``; returns the default."""
        default = {"cpus": 1.0, "gpus": 0.0, "memory": 0.0}.get(key, 0.0)
        entries = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else None
        if entries is None:
            return self.one_amount(data, where, key)
        if not entries:
            self.fail(
                where,
                "an empty list of cases",
                "write e.g. [{when: {model: resnet50}, value: 1}, {value: 0}]",
            )
        for i, entry in enumerate(entries):
            at = f"{where}[{i}]" if isinstance(data, list) else where
            if not isinstance(entry, Mapping):
                self.fail(
                    at,
                    f"expected {{when: {{variable: value}}, value: N}}, got {_kind(entry)}",
                    "write e.g. {when: {model: resnet50}, value: 1}",
                )
            self.keys(entry, ("when", "value"), at, required=("value",))
            value = self.one_amount(entry["value"], f"{at}.value", key)
            if "when" not in entry:
                default = value
                continue
            cases.append(ResourceCase(key, self.when(entry["when"], at, list(variables)), value))
        return default

    def one_amount(self, value: Any, where: str, key: str) -> float:
        if key == "memory":
            value = _bytes(value) if isinstance(value, str) else value
            return float(int(self.number(value, where, low=1)))
        amount = self.number(value, where, low=0)
        if key == "gpus" and amount > 1 and amount != int(amount):
            self.fail(
                where,
                f"fractional GPUs above 1 ({amount}) cannot be placed",
                "use a fraction below 1 (e.g. 0.25) or a whole number",
            )
        return amount

    def compare(
        self, data: Any, variables: tuple[Variable, ...], metrics: tuple[Metric, ...]
    ) -> Compare | None:
        if data is None:
            return None
        self.keys(
            data,
            ("variable", "treatment", "baseline", "metric", "alpha", "arms"),
            "compare",
            required=("variable", "baseline"),
        )
        by_name = {v.name: v for v in variables}
        var = data["variable"]
        if not isinstance(var, str) or var not in by_name:
            self.fail("compare.variable", f"{var!r} is not a variable", f"use one of {', '.join(by_name)}")
        target = by_name[var]
        baseline = data["baseline"]
        raw = data.get("treatment", "all")
        if raw == "all" and not (target.kind == "choice" and "all" in target.choices):
            treatment: Scalar | tuple[Scalar, ...] | None = None
        elif isinstance(raw, list):
            if not raw:
                self.fail("compare.treatment", "empty list", "name one or more levels, or write all")
            treatment = tuple(raw)
        else:
            treatment = raw
        levels = treatment if isinstance(treatment, tuple) else () if treatment is None else (treatment,)
        for key, value in [("baseline", baseline)] + [("treatment", t) for t in levels]:
            if not _is_scalar(value):
                self.fail(
                    f"compare.{key}", f"{value!r} is not a single value", "write one level of the variable"
                )
            if target.kind == "choice" and value not in target.choices:
                self.fail(
                    f"compare.{key}",
                    f"{value!r} is not one of {list(target.choices)}",
                    "use one of the variable's choices",
                )
        if baseline in levels:
            self.fail(
                "compare.treatment",
                f"the baseline {baseline!r} is also a treatment",
                "compare the baseline against other levels only",
            )
        arms = data.get("arms", "best")
        if arms not in ("best", "pooled"):
            self.fail(
                "compare.arms",
                f"unknown value {arms!r}",
                "use best (each level's best trial) or pooled (all its trials, averaged per seed)",
            )
        metric = data.get("metric", metrics[0].name)
        if not isinstance(metric, str) or metric not in {m.name for m in metrics}:
            self.fail(
                "compare.metric",
                f"{metric!r} is not a metric",
                f"use one of {', '.join(m.name for m in metrics)}",
            )
        alpha = self.number(data.get("alpha", 0.05), "compare.alpha", low=0)
        if not 0 < alpha < 1:
            self.fail("compare.alpha", f"must lie between 0 and 1, got {alpha}", "use e.g. 0.05")
        return Compare(var, treatment, baseline, metric, alpha, arms)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | bool | int) or (isinstance(value, float) and math.isfinite(value))


def _seconds(text: str) -> float | None:
    m = re.fullmatch(
        r"\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*"
        r"(?:(\d+(?:\.\d+)?)\s*s?)?\s*",
        text,
        re.IGNORECASE,
    )
    if not m or not any(m.groups()):
        return None
    h, mins, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mins * 60 + s


def _bytes(text: str) -> float | str:
    """'4GB' / '512MiB' / '1e9' to bytes; anything else comes back for number() to refuse."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        return text
    scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    return float(m.group(1)) * scale
