"""The live progress line: done/running/queued/failed, best so far, rate and ETA, redrawn in place.

On a terminal the line is redrawn at most 5 times a second; elsewhere (CI logs, Slurm output) a plain
line is printed every 10 seconds, so logs stay readable. The first failed run's error is printed once,
under the line as it stood when the run failed, as soon as it is recorded.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sweeper.engine.loop import Stats
from sweeper.errors import command
from sweeper.results.values import mean_of

if TYPE_CHECKING:
    import pandas as pd


def duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def best_so_far(stats: Stats, metric: str) -> str:
    """``best test_mse=0.2607 (trial 2)``: the search's live best, as the progress line shows it."""
    return f"best {metric}={stats.best_value:.4g} (trial {stats.best_trial})"


def line(stats: Stats, metric: str) -> str:
    elapsed = stats.elapsed
    total_runs = stats.trials_total * stats.replicates
    parts = [
        f"trials {stats.trials_done}/{stats.trials_total}",
        f"runs {stats.runs_done}/{total_runs}",
        f"running {stats.running}",
        f"queued {stats.queued}",
        f"failed {stats.failed}",
    ]
    if stats.best_value is not None:
        parts.append(best_so_far(stats, metric))
    rate = stats.rate
    if rate is not None:
        parts.append(f"{rate:.1f} runs/s")
        left = total_runs - stats.runs_done
        if left > 0 and not stats.stopping:  # a stopping sweep will not run them
            parts.append(f"ETA {duration(left / rate)}")
    parts.append(duration(elapsed))
    if stats.stopping:
        parts.append(stats.stopping)
    return " | ".join(parts)


def counts_line(stats: Stats, name: str) -> str:
    """``quickstart: 30 trials, 90 runs (88 complete, 2 failed)``: the summary's head, a result's repr."""
    counts = ", ".join(f"{n} {status}" for status, n in sorted(stats.counts.items())) or "no runs"
    return f"{name}: {stats.trials_done} trials, {stats.runs_done} runs ({counts})"


def summary(
    stats: Stats,
    name: str,
    table: pd.DataFrame,
    best: dict[str, Any] | None,
    path: Path | str,
    metrics: Sequence[str] = (),
    per_setting: list[dict[str, Any]] | None = None,
) -> list[str]:
    """The lines a launch ends with, after the progress line: the counts and this launch's rate, one
    per distinct error, :func:`metric_warnings`, the best trial (``per_setting``: the best of each
    setting of the comparison's ``within:``) and where the results are (``path``, as the user knows it)."""
    from sweeper.results.failures import group_lines, table_groups
    from sweeper.results.status import params_text, per_setting_lines

    new = stats.runs_done - stats.runs_before
    took = f"{stats.elapsed:.1f}s" if stats.elapsed < 10 else duration(stats.elapsed)  # not "in 0s"
    rate = f"; this launch: {new} runs in {took}" + (f", {stats.rate:.1f} runs/s" if stats.rate else "")
    lines = [counts_line(stats, name) + rate]
    lines += group_lines(table_groups(table), path)
    lines += ["warning: " + text for text in metric_warnings(stats, table, metrics)]
    if per_setting:  # a best across data sets would be the easiest data set's
        lines += per_setting_lines(per_setting, "best per")
    elif best:
        lines.append(
            f"best: trial {best['trial']} {best['metric']}={best['mean']:.6g} "
            f"({mean_of(best['n'], ' replicates')}) with {params_text(best['params'])}"
        )
    lines.append(f"results: {path}  (sweeper.load({str(path)!r}))")
    return lines


def metric_warnings(stats: Stats, table: pd.DataFrame, metrics: Sequence[str]) -> list[str]:
    """What the runs' metrics say is wrong with how they are declared or computed: a declared metric
    no run reported (its columns would be silently empty), nan or inf values, and returned keys no
    metric declares (dropped), curves without the primary metric. The summary's warning lines, and
    ``SweepResult.warnings``."""
    out = []
    done = table[table["status"] == "complete"] if "status" in table.columns else table
    missing = [
        m
        for m in metrics
        if len(done) and m not in stats.nonfinite and (m not in done.columns or done[m].isna().all())
    ]
    if missing:
        it = "it" if len(missing) == 1 else "them"
        out.append(
            f"no run reported {', '.join(map(repr, missing))}, declared in metrics:; return "
            f"{it} in the objective's dict, or drop {it} from metrics:"
        )
    if stats.nonfinite:
        out.append(nonfinite_text(stats.nonfinite, metrics))
    if stats.undeclared:
        names = sorted(stats.undeclared)
        it, first = ("it" if len(names) == 1 else "them"), names[0]
        out.append(
            f"runs also returned {', '.join(map(repr, names))}, not declared in metrics:, so not "
            f"recorded; add {it} to metrics: (e.g. - {first}: maximize) to keep {it}"
        )
    if stats.curves_without_primary and metrics:
        n, primary = stats.curves_without_primary, metrics[0]
        out.append(
            f"{n} run{'s' if n != 1 else ''} reported steps (trial.report) without {primary}, the primary"
            f" metric, so a pruner cannot judge them and the curves figure draws another; report"
            f" {primary}=... at each step"
        )
    return out


def nonfinite_text(counts: dict[str, int], metrics: Sequence[str]) -> str:
    """Which metrics came back nan or inf, and what that does: a training that diverged shows here
    rather than only as blanks in the table."""
    named = sorted(counts, key=lambda m: (list(metrics).index(m) if m in metrics else len(metrics), m))
    parts = [f"{m} in {counts[m]} run{'s' if counts[m] != 1 else ''}" for m in named]
    text = f"runs returned nan or inf: {', '.join(parts)}"
    if metrics and metrics[0] in counts:
        text += f"; their trials have no mean {metrics[0]}, rank last and count as failed for the search"
    return text


def first_error(stats: Stats, folder: Path | None) -> list[str]:
    """The lines shown once for this launch's first failed run: which run, and its last lines."""
    from sweeper.results.failures import screen_tail

    if stats.first_error is None:
        return []
    trial, replicate, error = stats.first_error
    out = [f"run failed (trial {trial}, replicate {replicate}); the end of its error:"]
    out += ["  | " + line for line in screen_tail(error)]
    where = command("errors", folder) if folder is not None else "sweeper errors DIR"
    out.append(f"  (shown for the first failed run only; `{where}` prints every traceback)")
    return out


class ProgressLine:
    def __init__(self, metric: str, stream: TextIO | None = None, folder: Path | None = None):
        self.metric = metric
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.folder = folder
        self._last = 0.0
        self._width = 0
        self._stopping = ""
        self._open = False  # a redrawn line without its newline yet
        self._told = False  # the first error has been shown

    def __call__(self, stats: Stats) -> None:
        if stats.first_error is not None and not self._told:
            self._told = True
            self.show(stats)
            self.end_line()
            self.stream.write("\n".join(first_error(stats, self.folder)) + "\n")
            self.stream.flush()
            self._width = 0
            self._last, self._stopping = time.monotonic(), stats.stopping
            return
        now = time.monotonic()
        changed = stats.stopping != self._stopping  # a stop and its countdown show at once
        if now - self._last < (0.2 if self.tty else 10.0) and not changed:
            return
        self._stopping = stats.stopping
        self._last = now
        self.show(stats)

    def show(self, stats: Stats) -> None:
        text = line(stats, self.metric)
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = len(text)
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end_line(self) -> None:
        """Finish a redrawn line, so whatever is printed next starts on a line of its own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def close(self, stats: Stats) -> None:
        self.show(stats)
        self.end_line()


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell), where ``\\r`` does not redraw."""
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    ip = get() if get is not None else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class NotebookProgress:
    """The same progress as a bar in one notebook output cell, updated in place (at most 2 a second).

    It uses IPython's display handles, so it needs no widget extension and survives a saved notebook.
    """

    def __init__(self, metric: str):
        import IPython.display

        ipd: Any = IPython.display  # untyped
        self.metric = metric
        self._html = ipd.HTML
        self._handle = ipd.display(ipd.HTML(self._render(None)), display_id=True)
        self._last = 0.0

    def _render(self, stats: Stats | None) -> str:
        import html

        if stats is None:
            return "<div>sweeper: starting</div>"
        total = max(1, stats.trials_total * stats.replicates)
        return (
            f'<div><progress value="{stats.runs_done}" max="{total}" style="width:40%"></progress>'
            f" <code>{html.escape(line(stats, self.metric))}</code></div>"
        )

    def __call__(self, stats: Stats) -> None:
        now = time.monotonic()
        if now - self._last >= 0.5:
            self._last = now
            self.show(stats)

    def show(self, stats: Stats) -> None:
        if self._handle is not None:
            self._handle.update(self._html(self._render(stats)))

    def close(self, stats: Stats) -> None:
        self.show(stats)

    def end_line(self) -> None:
        """Nothing to finish: the bar lives in its own output cell."""


def progress_display(
    metric: str, progress: bool | None, folder: Path | None = None
) -> ProgressLine | NotebookProgress | None:
    """What ``launch(progress=...)`` shows: ``True`` a bar in Jupyter, else the terminal line;
    ``None`` (the default) the same in a notebook or on a terminal, nothing in logs; ``False`` nothing."""
    notebook = in_notebook()
    if progress is False or (progress is None and not notebook and not sys.stderr.isatty()):
        return None
    return NotebookProgress(metric) if notebook else ProgressLine(metric, folder=folder)
