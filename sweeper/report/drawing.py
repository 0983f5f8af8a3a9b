"""The report's figures, drawn in a second process while the first computes the statistics.

On a 2,000-trial table the figures (matplotlib's import and 6-8 PNGs) and the statistics (the tests,
fANOVA and scikit-learn's import) each take about half of ``sweeper report``, and the figures of the
table need nothing the statistics compute. So a child process, started first (its imports overlap
the table's reading), gets a pickled copy of the rows the parent loaded (the same rows, even while a
sweep appends more), draws the table's figures, then the verdict's and the importance's once the
parent sends those. Whatever fails in the child is raised in the parent, its traceback attached.

Where a fork is safe (:mod:`sweeper.report.forks`: Linux, no other Python thread, as in ``sweeper
report``) the child is a fork of this process: it imports nothing again, so it is used whatever the
load. Elsewhere (a notebook's kernel, a Ray driver) it is a new Python, ``python -m
sweeper.report.drawing``, started only when a core is idle, since its own imports cost about a CPU
second. A small table is drawn in process: the child's start costs more than it saves.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sweeper.report import forks

if TYPE_CHECKING:
    import threading

    import pandas as pd

    from sweeper.analysis import Verdict
    from sweeper.analysis.importance import Importance
    from sweeper.spec.experiment import Experiment

Drawn = tuple[str, str]  # (PNG file name, caption) of a figure that was drawn
DOING = "drawing the report's figures"  # the child's work, in its messages

PARALLEL_TRIALS = 500  # from this many trials on, a second process draws (below it: slower, not faster)
PLOTTED = 1000  # trials the scatter figures draw at most (points past it cost time, not information)


class Drawing:
    """The figures being drawn for one report: :meth:`table` hands over the table (its figures start),
    :meth:`verdict` the verdict as soon as it is known, :meth:`done` the importance, and returns every
    figure in page order."""

    def __init__(self, out: Path, child: forks.Child | None) -> None:
        self.out, self.child = out, child
        self.wide = False  # its table figures wait for the importance, which picks their variables
        self.drawn: list[Drawn] = []  # in process: what is drawn so far, in page order
        self.sent: threading.Thread | None = None  # the thread writing the table to the child

    def table(self, df: pd.DataFrame, history: pd.DataFrame | None, spec: Experiment) -> None:
        import threading

        self.df, self.history, self.spec = df, history, spec
        self.wide = wide(df, spec)
        if self.child is not None and df["trial"].nunique() < PARALLEL_TRIALS:
            forks.end(self.child)  # a small table: drawing it here costs less than the child's imports
            self.child = None
        if self.child is None:
            self.drawn = [] if self.wide else table_figures(df, history, spec, self.out)
            return
        # the table goes down the pipe from a thread: the child reads it once its imports are done
        self.sent = threading.Thread(
            target=_send, args=(self.child, (df, history, spec, self.out)), daemon=True
        )
        self.sent.start()

    def verdict(self, verdict: Verdict | None) -> None:
        if self.child is None:
            self.drawn = verdict_figures(self.df, self.spec, verdict, self.out) + self.drawn
            return
        if self.sent is not None:
            self.sent.join()
        _send(self.child, verdict)

    def done(self, imp: Importance) -> list[Drawn]:
        if self.child is None:
            table = table_figures(self.df, self.history, self.spec, self.out, imp) if self.wide else []
            return self.drawn + table + importance_figure(imp, self.spec, self.out)
        _send(self.child, imp)
        stdin, stdout = self.child.stdin, self.child.stdout
        if stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # a dead child: its exit code tells
                stdin.close()
        reply = stdout.read() if stdout is not None else b""
        drawn: list[Drawn] = forks.outcome(reply, self.child.wait(), DOING)
        return drawn


@contextlib.contextmanager
def figures(out: Path) -> Iterator[Drawing]:
    """Start the process that draws the report's figures into ``out`` (with 2 CPUs or more), so that
    its imports overlap the table's reading (see :class:`Drawing` for the rest). Leaving the block
    ends a child that is still running (the statistics failed, or the table was small)."""
    drawing = Drawing(out, _start())
    try:
        yield drawing
    finally:
        if drawing.child is not None:
            forks.end(drawing.child)


def _start() -> forks.Child | None:
    """A fork of this process where that is safe; else a new Python when a core is idle for it;
    None where neither (a busy machine, an embedded Python with no interpreter): drawn here."""
    import subprocess

    if forks.forkable():  # whatever the load: a fork imports nothing, its CPU is the figures' own
        import pandas  # noqa: F401  # both need it: imported once, before the fork, not in each

        return forks.Forked.start(_serve)
    if not _spare_core():
        return None
    root = str(Path(__file__).resolve().parents[2])  # the folder holding this sweeper package
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "sweeper.report.drawing"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"},
        )
    except OSError:
        return None


def _spare_core() -> bool:
    """Whether a second process would get a core of its own: 2 CPUs or more, and a load average
    (over the last minute) that leaves one idle, as ``make -l`` asks. On a busy machine the child's
    own imports (about a CPU second) cost more than running beside the statistics saves."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows: no load average
        load = 0.0
    return cpus >= 2 and load <= cpus - 1


def _send(child: forks.Child, payload: Any) -> None:
    if child.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError):  # the child died: its exit code says so in done()
        pickle.dump(payload, child.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        child.stdin.flush()


def _child() -> None:
    """``python -m sweeper.report.drawing``: :func:`_serve` on stdin and stdout."""
    reply = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library's stray print goes to stderr, not into the reply
    _serve(sys.stdin.buffer, reply)


def _serve(inp: IO[bytes], reply: IO[bytes]) -> None:
    """The child's work: the table, the verdict, then the importance in on ``inp``; the figures drawn
    (or the exception) out on ``reply`` (:func:`sweeper.report.forks.answer`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # while the table is on its way: the figures import them first

    def draw() -> list[Drawn]:
        df, history, spec, out = pickle.load(inp)
        table = [] if wide(df, spec) else table_figures(df, history, spec, out)
        drawn = verdict_figures(df, spec, pickle.load(inp), out) + table
        imp = pickle.load(inp)
        if wide(df, spec):
            drawn += table_figures(df, history, spec, out, imp)
        return drawn + importance_figure(imp, spec, out)

    reply.write(forks.answer(draw))
    reply.close()


# ---------------------------------------------------------------- the figures


def _kept(out: Path, name: str, caption: str, made: Path | None) -> list[Drawn]:
    """The figure as drawn, or none, with a stale PNG of that name from an earlier report removed."""
    if made is not None:
        return [(name, caption)]
    (out / name).unlink(missing_ok=True)
    return []


def wide(df: pd.DataFrame, spec: Experiment) -> bool:
    """More swept variables than a figure draws: the importance picks which (so those figures wait)."""
    from sweeper.analysis import swept
    from sweeper.report.figures import MAX_PANELS

    return len(swept(spec, df)) > MAX_PANELS


def table_figures(
    df: pd.DataFrame,
    history: pd.DataFrame | None,
    spec: Experiment,
    out: Path,
    imp: Importance | None = None,
) -> list[Drawn]:
    """The figures drawn from the table (and, on a wide sweep, the importance, which picks their
    variables): variables, history, parallel coordinates, learning curves, Pareto front."""
    from sweeper.analysis import stage_rows
    from sweeper.report import figures as plots

    few, shown, of = thin(stage_rows(df), spec)  # 200,000 trials' dots: minutes, and a blot
    drawn = f" ({shown:,} of {of:,} trials drawn: a seeded sample plus every new best and the top trials)"
    thinned = drawn if shown < of else ""
    return [
        *_kept(
            out,
            "variables.png",
            f"{spec.primary.name} against each variable: grey dots are replicates, blue the trial mean ± sd."
            + thinned,
            plots.metric_vs_variables(few, spec, out / "variables.png", imp),
        ),
        *_kept(
            out,
            "history.png",
            "Optimisation history: trial means in trial order and the best so far." + thinned,
            plots.optimisation_history(few, spec, out / "history.png"),
        ),
        *_kept(
            out,
            "parallel.png",
            "Parallel coordinates of the top trials, coloured by the primary metric.",
            plots.parallel_coordinates(df, spec, out / "parallel.png", imp=imp),
        ),
        *_kept(
            out,
            "learning_curves.png",
            "Learning curves from the history table: mean over replicates "
            "(band: their range); grey: other finished trials; dashed: trials stopped early.",
            plots.learning_curves(history, df, spec, out / "learning_curves.png"),
        ),
        *_kept(
            out,
            "pareto.png",
            "Pareto front of the first two metrics (trial means)." + thinned,
            plots.pareto_front(few, spec, out / "pareto.png"),
        ),
    ]


def importance_figure(imp: Importance, spec: Experiment, out: Path) -> list[Drawn]:
    from sweeper.report import figures as plots

    return _kept(
        out,
        "importance.png",
        f"Variable importance: Optuna's {imp.method} on the study rebuilt "
        "from the table (target: trial mean of the primary metric); conditional variables are "
        "weighed inside each branch where they are active.",
        plots.importance_bars(imp, spec.primary.name, out / "importance.png"),
    )


def verdict_figures(df: pd.DataFrame, spec: Experiment, verdict: Verdict | None, out: Path) -> list[Drawn]:
    """The comparison's figures: per-seed arms, or per-setting effects, CD diagram and confirmation."""
    from sweeper.analysis import CONFIRM, stage_rows
    from sweeper.report import figures as plots
    from sweeper.report import figures_compare as fc
    from sweeper.results.values import raced

    if verdict is None:
        return []
    if not (verdict.within or verdict.stage == CONFIRM):
        return _kept(
            out,
            "arms.png",
            f"{verdict.metric} per seed in each arm of the comparison (lines join "
            "replicates that share a seed).",
            plots.arm_spread(raced(stage_rows(df), spec, (verdict.variable,)), verdict, out / "arms.png"),
        )
    drawn = _kept(
        out,
        "effects.png",
        f"Effect on {verdict.metric} (treatment - baseline) in each setting with its CI"
        + ("; the shaded band is the ROPE." if verdict.rope is not None else "."),
        fc.setting_effects(verdict, out / "effects.png"),
    )
    if verdict.across is not None:
        drawn += _kept(
            out,
            "cd.png",
            "Critical-difference diagram (Demšar 2006): average rank of each arm over the settings; "
            "arms joined by a thick bar differ by less than the Nemenyi critical difference.",
            fc.cd_diagram(verdict.across, out / "cd.png"),
        )
    return drawn + _kept(
        out,
        "confirm.png",
        "Each arm's search-stage estimate (its best trial on the search's seeds) and its mean on the "
        "confirmation stage's fresh seeds: the gap is the winner's curse.",
        fc.search_vs_confirm(verdict, out / "confirm.png"),
    )


def thin(
    df: pd.DataFrame, spec: Experiment, limit: int = PLOTTED, seed: int = 0
) -> tuple[pd.DataFrame, int, int]:
    """The rows of at most about ``limit`` trials for the scatter figures, and (trials kept, trials):
    a seeded sample, plus every trial that set a new best in trial order (so the best-so-far line is
    exact) and the 50 best."""
    import numpy as np

    ids = np.unique(df["trial"].to_numpy())
    if len(ids) <= limit:
        return df, len(ids), len(ids)
    metric = spec.primary.name
    means = df[df["status"] == "complete"].groupby("trial")[metric].mean().dropna()
    sign = 1.0 if spec.primary.direction == "maximize" else -1.0
    scored = sign * means.to_numpy()
    records = means.index[scored >= np.maximum.accumulate(scored)]
    best = means.index[np.argsort(-scored, kind="stable")[:50]]
    sample = np.random.default_rng(seed).choice(ids, limit, replace=False)
    keep = np.union1d(np.union1d(sample, records.to_numpy()), best.to_numpy())
    return df[df["trial"].isin(keep)], len(keep), len(ids)


if __name__ == "__main__":
    _child()
