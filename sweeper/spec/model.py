"""Reading a spec: a sweep file or a dict, validated by :mod:`sweeper.spec.schema` and
:mod:`sweeper.spec.rules`, built into the :mod:`~sweeper.spec.experiment` dataclasses (and back, for an
Experiment built in Python). pydantic is imported only when a spec is read.
"""

from __future__ import annotations

import dataclasses
import math
import os
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SpecError
from sweeper.spec.experiment import (
    Command,
    Compare,
    Component,
    Confirm,
    Experiment,
    Metric,
    Pruner,
    Racing,
    ResourceCase,
    Resources,
    Scalar,
    Search,
    SeedFactor,
    SlurmOptions,
    Tracking,
    Variable,
    When,
)

if TYPE_CHECKING:
    from sweeper.spec import schema

__all__ = ["check_experiment", "load_spec", "parse_spec", "spec_dict"]


def load_spec(source: str | Path | Mapping[str, Any], *, root: str | Path | None = None) -> Experiment:
    """Parse a sweep file path or a spec dict into a validated :class:`Experiment`.

    A file's objective and paths are looked up next to it; a dict's in ``root`` (default: the
    current folder). A dict's ``objective`` may also be the function itself (``Experiment.function``;
    ``objective`` is then its name).
    """
    if isinstance(source, Mapping):
        function = source.get("objective")
        if callable(function):  # the function itself: validated and recorded by its name
            source = {**source, "objective": function_name(function)}
        e = parse_spec(source, source_name="<dict>", root=os.path.abspath(root or Path.cwd()))
        return dataclasses.replace(e, function=function) if callable(function) else e
    from sweeper.spec.loader import read_yaml

    path = Path(source)
    if not path.is_file():
        import difflib

        near = sorted(p.name for p in path.parent.glob("*.y*ml")) if path.parent.is_dir() else []
        close = difflib.get_close_matches(path.name, near, n=1)
        raise SpecError(
            "no such sweep file",
            source=str(path),
            fix=f"did you mean {path.parent / close[0]}?"
            if close
            else "check the path; sweep files are YAML, e.g. sweeps/quickstart.yaml",
        )
    data, marks = read_yaml(path)
    if not isinstance(data, Mapping):
        raise SpecError(
            "the file must hold a mapping of keys (experiment:, objective:, ...)",
            source=str(path),
            fix="start from sweeps/quickstart.yaml",
        )
    return parse_spec(data, source_name=str(path), root=str(root or path.resolve().parent), marks=marks)


def parse_spec(
    data: Mapping[str, Any],
    *,
    source_name: str,
    root: str,
    marks: Mapping[tuple[Any, ...], tuple[int, int]] | None = None,
) -> Experiment:
    """Validate spec data (every mistake at once, in file order) and build the Experiment from it."""
    from pydantic import ValidationError

    from sweeper.spec import rules, schema
    from sweeper.spec.block import fail_all, reraised
    from sweeper.spec.messages import positions, spec_error

    try:
        try:
            sweep = schema.Sweep.model_validate(dict(data))
        except ValidationError as exc:  # the rules across keys that the valid parts break, too
            fail_all("Sweep", reraised(exc.errors()) + rules.despite(dict(data), exc))
        fail_all("Sweep", rules.across(sweep))
    except ValidationError as exc:
        order = marks or positions(dict(data))
        raise spec_error(exc, source=source_name, marks=marks or {}, order=order) from None
    except RecursionError:
        raise SpecError(
            "nested too deeply to read", source=source_name, fix="a spec needs a few levels of nesting"
        ) from None
    return _build(sweep, data, source_name, root)


def _build(s: schema.Sweep, data: Mapping[str, Any], source: str, root: str) -> Experiment:
    from sweeper.spec import schema

    racing: Racing | None = None
    factors: tuple[SeedFactor, ...] = ()
    if isinstance(s.replicates, int):
        replicates = s.replicates
    elif isinstance(s.replicates, schema.Racing):
        racing, replicates = Racing(s.replicates.min, s.replicates.max), s.replicates.max
    elif isinstance(s.replicates, dict):
        factors = tuple(SeedFactor(k, n) for k, n in s.replicates.items())
        replicates = math.prod(f.n for f in factors)
    variables = tuple(_variable(name, body) for name, body in s.variables.items())
    command = None
    if s.command is not None:
        raw = s.command
        argv = tuple(str(t) for t in raw) if isinstance(raw, list) else tuple(shlex.split(raw))
        command = Command(
            argv,
            _under(root, s.workdir or "."),
            bool(s.shell),
            " ".join(argv) if isinstance(raw, list) else raw.strip(),
        )
    pruner = None
    if s.pruner is not None:
        given = data["pruner"] if isinstance(data["pruner"], Mapping) else {}
        pruner = Pruner(s.pruner.method, tuple((str(k), v) for k, v in given.items() if k != "method"))
    return Experiment(
        name=s.experiment,
        objective=s.objective,
        metrics=tuple(Metric(k, d) for k, d in s.metrics.items()),
        variables=variables,
        search=Search(
            s.search.method, s.search.trials, s.search.seed, s.search.deterministic, s.search.concurrency
        ),
        replicates=replicates,
        racing=racing,
        factors=factors,
        resources=_resources(s.resources),
        hypothesis=s.hypothesis or "",
        compare=_compare(s.compare, s) if s.compare is not None else None,
        timeout=s.timeout,
        max_failures=s.max_failures,
        source=source,
        root=root,
        raw=dict(data),
        slurm=SlurmOptions(**s.slurm.model_dump(exclude_none=True)) if s.slurm is not None else None,
        command=command,
        pruner=pruner,
        components=tuple(_component(k, c, root) for k, c in (s.components or {}).items()),
        tracking=Tracking(s.tracking.mlflow.uri, s.tracking.mlflow.experiment or s.experiment)
        if s.tracking is not None
        else None,
    )


def _under(root: str, path: str) -> str:
    """``path`` relative to ``root``, made absolute without touching the filesystem."""
    return os.path.normpath(os.path.join(root, path))


def _when(when: Mapping[str, list[Any]] | None) -> When:
    return tuple((k, tuple(v)) for k, v in (when or {}).items())


def _variable(name: str, body: Any) -> Variable:
    from sweeper.spec import schema

    if isinstance(body, schema.Choice):
        return Variable(name, "choice", choices=tuple(body.choice), when=_when(body.when))
    if isinstance(body, schema.Const):
        return Variable(name, "const", value=body.const, when=_when(body.when))
    if isinstance(body, schema.IntRange | schema.FloatRange):
        kind = "int" if isinstance(body, schema.IntRange) else "float"
        low, high = body.bounds
        return Variable(name, kind, low=low, high=high, step=body.step, log=body.log, when=_when(body.when))
    return Variable(name, "const", value=body)


def _resources(r: schema.Resources) -> Resources:
    cases: list[ResourceCase] = []

    def amount(key: str, value: Any, default: float) -> float:
        entries = value if isinstance(value, list) else [value] if hasattr(value, "value") else None
        if entries is None:
            return float(value)
        for case in entries:
            if case.when is None:
                default = float(case.value)
            else:
                cases.append(ResourceCase(key, _when(case.when), float(case.value)))
        return default

    cpus = amount("cpus", r.cpus, 1.0)
    gpus = amount("gpus", r.gpus, 0.0)
    memory = int(amount("memory", r.memory, 0.0)) if r.memory is not None else None
    custom = tuple((k, amount(f"custom.{k}", v, 0.0)) for k, v in r.custom.items())
    return Resources(cpus, gpus, memory or None, custom, tuple(cases))


def _compare(c: schema.Compare, s: schema.Sweep) -> Compare:
    from sweeper.spec.rules import treatment_levels

    levels = treatment_levels(c, s.variables[c.variable])
    treatment: Scalar | tuple[Scalar, ...] | None = (
        None if not levels else levels if isinstance(c.treatment, list) else levels[0]
    )
    return Compare(
        c.variable,
        treatment,
        c.baseline,
        c.metric or next(iter(s.metrics)),
        c.alpha,
        c.arms,
        within=tuple(c.within),
        confirm=Confirm(c.confirm.replicates, c.confirm.top) if c.confirm is not None else None,
        rope=c.rope,
        correlation=c.correlation,
    )


def _component(name: str, c: schema.Component, root: str) -> Component:
    source = next(k for k in ("path", "job", "value") if k in c.model_fields_set)
    kind = c.kind or ("metadata" if source == "value" else "dataset")
    if source == "path":
        return Component(name, kind, path=_under(root, str(c.path)))
    if source == "job":
        return Component(name, kind, job=c.job)
    return Component(name, kind, value=c.value)


def function_name(function: Callable[..., Any]) -> str:
    """The module:function name a function given as the objective is recorded and shown by
    (``__main__:train`` for a notebook's or a script's own)."""
    module = getattr(function, "__module__", None) or "__main__"
    name = getattr(function, "__name__", "")
    return f"{module}:{name if name.isidentifier() else 'objective'}"


def check_experiment(e: Experiment) -> Experiment:
    """An Experiment built in Python, put through the sweep file's model: the same rules, the same
    messages (fields named as a spec dict spells them). Returns it with ``raw`` filled in for
    experiment.json when it had none."""
    if callable(e.objective):  # Experiment(objective=train): the function, by its name
        e = dataclasses.replace(e, objective=function_name(e.objective), function=e.objective)
    data = spec_dict(e)
    parse_spec(data, source_name="<Experiment>", root=e.root)
    return e if e.raw else dataclasses.replace(e, raw=data)


def spec_dict(e: Experiment) -> dict[str, Any]:
    """The spec dict an Experiment stands for (the inverse of parse_spec, but for ``raw``)."""

    def when(w: When) -> dict[str, Any]:
        return {"when": {k: list(v) for k, v in w}} if w else {}

    def variable(v: Variable) -> Any:
        if v.kind == "choice":
            return {"choice": list(v.choices), **when(v.when)}
        if v.kind in ("int", "float"):
            step = {"step": v.step} if v.step is not None else {}
            return {v.kind: [v.low, v.high], "log": v.log, **step, **when(v.when)}
        return {"const": v.value, **when(v.when)} if v.when or v.kind != "const" else v.value

    def amount(key: str, plain: float) -> Any:
        cases = [
            {"when": {k: list(a) for k, a in c.when}, "value": c.value}
            for c in e.resources.cases
            if c.key == key
        ]
        return [*cases, {"value": plain}] if cases else plain

    r = e.resources
    out: dict[str, Any] = {
        "experiment": e.name,
        "metrics": [{m.name: m.direction} for m in e.metrics],
        "variables": {v.name: variable(v) for v in e.variables},
        "search": {
            "method": e.search.method,
            **({"trials": e.search.trials} if e.search.trials is not None else {}),
            "seed": e.search.seed,
            "deterministic": e.search.deterministic,
            "concurrency": e.search.concurrency,
        },
        "replicates": {"min": e.racing.min, "max": e.racing.max}
        if e.racing
        else {f.name: f.n for f in e.factors}
        if e.factors
        else e.replicates,
        "resources": {
            "cpus": amount("cpus", r.cpus),
            "gpus": amount("gpus", r.gpus),
            **({"memory": amount("memory", r.memory)} if r.memory else {}),
            "custom": {k: amount(f"custom.{k}", v) for k, v in r.custom},
        },
        "hypothesis": e.hypothesis,
    }
    if e.objective is not None:
        out["objective"] = e.objective
    if e.command is not None:
        out.update(command=list(e.command.argv), workdir=e.command.workdir, shell=e.command.shell)
    if e.compare is not None:
        c = e.compare
        out["compare"] = {
            "variable": c.variable,
            "baseline": c.baseline,
            "treatment": "all"
            if c.treatment is None
            else list(c.treatment)
            if isinstance(c.treatment, tuple)
            else c.treatment,
            "metric": c.metric,
            "alpha": c.alpha,
            "arms": c.arms,
            "within": list(c.within),
            **({"confirm": {"replicates": c.confirm.replicates, "top": c.confirm.top}} if c.confirm else {}),
            **({"rope": c.rope} if c.rope is not None else {}),
            **({"correlation": c.correlation} if c.correlation is not None else {}),
        }
    optional = {
        "timeout": e.timeout,
        "max_failures": e.max_failures,
        "pruner": {"method": e.pruner.method, **dict(e.pruner.options)} if e.pruner else None,
        "components": {
            c.name: {"path": c.path} if c.path else {"job": c.job} if c.job else {"value": c.value}
            for c in e.components
        }
        or None,
        "slurm": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(e.slurm).items()
            if v is not None
        }
        if e.slurm
        else None,
        "tracking": {"mlflow": {"uri": e.tracking.mlflow_uri, "experiment": e.tracking.mlflow_experiment}}
        if e.tracking
        else None,
    }
    out.update({k: v for k, v in optional.items() if v is not None})
    for comp, body in zip(e.components, out.get("components", {}).values(), strict=True):
        body["kind"] = comp.kind
    return out
