"""What a launch checks before it runs anything, and the dry run that stops there.

Reading a spec is pure (:mod:`sweeper.spec`); the checks that need this machine (does ``workdir``
exist, does the objective import and take the variables, does Optuna accept the pruner) run here,
once for a launch and once for ``sweeper launch --dry-run``, which then says what the launch would
do: the runs, the results folder (new, or resumed with how much done), the replicate seeds and the
first trials' variables, all without starting Ray or writing a file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import ObjectiveError, SpecError
from sweeper.spec.experiment import Experiment

if TYPE_CHECKING:
    from sweeper.engine.resume import Restored

PREVIEW = 3  # first trials a dry run shows


def check_launchable(spec: Experiment) -> None:
    """The checks of a spec that need this machine or its libraries, before any folder is touched."""
    from sweeper.search.pruners import check_pruner
    from sweeper.search.seeds import check_replicates

    if spec.command is not None and not Path(spec.command.workdir).is_dir():
        raise SpecError(
            f"no such folder {spec.command.workdir}",
            source=spec.source,
            field="workdir",
            fix=f"create it, or give a folder relative to {spec.root}",
        )
    check_pruner(spec)
    check_replicates(spec)
    if spec.command is not None and spec.command.shell:
        from sweeper.run.command import check_shell_template

        check_shell_template(spec.command.template, spec.source or "the sweep")


def checked_objective(spec: Experiment) -> Callable[..., Any] | None:
    """The objective, imported and checked against the variables it is called with (None for a
    command objective); its errors name the sweep file."""
    from sweeper.run.objective import check_signature, load_objective
    from sweeper.run.types import RunContext
    from sweeper.search.seeds import seed_column

    if spec.objective is None:
        return None
    metrics = tuple(m.name for m in spec.metrics)
    try:
        func = load_objective(RunContext(spec.objective, spec.root, metrics, function=spec.function))
        check_signature(
            func,
            spec.objective,
            [v.name for v in spec.variables if not v.when],
            [v.name for v in spec.variables if v.when],
            [c.name for c in spec.components] + [seed_column(f.name) for f in spec.factors],
        )
    except ObjectiveError as exc:  # name the sweep file the objective comes from
        raise ObjectiveError(f"{spec.source}: {exc}") from None
    return func


def resume_words(restored: Restored, done: bool, source: str) -> str:
    """``45 runs done, 15 trials finished, ...``: where a resumed sweep starts from."""
    from sweeper.results.status import extend_hint

    said = [f"{restored.runs_done} runs done", f"{restored.trials_done} trials finished"]
    if restored.partial:
        missing, trials = sum(len(p.missing) for p in restored.partial.values()), len(restored.partial)
        said.append(
            f"{missing} replicate{'s' if missing != 1 else ''} of {trials} unfinished"
            f" trial{'s' if trials != 1 else ''} to run first"
        )
    if done:
        said.append(f"nothing left to run ({extend_hint(source)})")
    return ", ".join(said)


def dry_run(spec: Experiment, folder: Path | str, sweep_file: str | None) -> list[str]:
    """What launching ``spec`` into ``folder`` would do, after every check a launch makes first
    (a URI on object storage is named, not read)."""
    from sweeper.engine.confirm import pending
    from sweeper.engine.resume import check_compatible, holds_experiment, restore
    from sweeper.results.status import params_text
    from sweeper.search.searcher import Searcher, budget
    from sweeper.search.seeds import replicate_seeds

    check_launchable(spec)
    checked_objective(spec)
    where = sweep_file or spec.source
    imports = " and its objective imports" if spec.objective else ""  # a command is run, not imported
    lines = [f"dry run: {where} is valid{imports}; nothing was run or written"]
    what = spec.objective or f"command: {spec.command.template if spec.command else ''}"
    lines.append(f"  objective: {what}")
    trials, r = budget(spec), spec.replicates
    each = "at most " if spec.racing else ""
    cpus = f"{spec.resources.cpus:g} CPU" + (f", {spec.resources.gpus:g} GPU" if spec.resources.gpus else "")
    lines.append(
        f"  search: {spec.search.method}, {trials:,} trials, seed {spec.search.seed}; {each}{r} replicates"
        f" per trial = {each}{trials * r:,} runs ({cpus} each)"
    )
    c = spec.compare
    if c is not None:
        treatment = "every other level" if c.treatment is None else c.treatment
        within = f", per {' and '.join(c.within)}" if c.within else ""
        lines.append(f"  compare: {treatment} against {c.baseline} ({c.variable}) on {c.metric}{within}")
        if c.confirm is not None:
            top = "configuration" if c.confirm.top == 1 else f"{c.confirm.top} configurations"
            lines.append(
                f"  then: each arm's best {top} rerun on {c.confirm.replicates} fresh seeds"
                + (" per setting" if c.within else "")
                + " (the confirmation stage, which the verdict rests on)"
            )
    searcher = Searcher(spec)
    if isinstance(folder, str):
        lines.append(f"  results: {folder} (object storage: not read by a dry run)")
    elif holds_experiment(folder):
        check_compatible(folder, spec, sweep_file)
        restored = restore(spec, folder, searcher)
        done = not restored.partial and searcher.exhausted and not pending(spec, folder)
        lines.append(f"  results: {folder}, resumed: {resume_words(restored, done, spec.source)}")
    else:
        lines.append(f"  results: {folder} (a new experiment)")
    if spec.factors:
        lines.append("  seed factors: " + ", ".join(f"{f.name} x{f.n}" for f in spec.factors))
    else:
        seeds = replicate_seeds(spec.search.seed, min(r, PREVIEW))
        more = ", ..." if r > PREVIEW else ""
        lines.append(f"  replicate seeds: {', '.join(map(str, seeds))}{more} (the same for every trial)")
    proposals = [p for p in (searcher.ask() for _ in range(PREVIEW)) if p is not None]
    if proposals:  # after a restore: the next the search proposes, beside the unfinished ones
        lines.append("  first trials:" if searcher.asked == len(proposals) else "  next new trials:")
        lines += [f"    trial {p.trial}: {params_text(p.params) or '(no variables)'}" for p in proposals]
    return lines
