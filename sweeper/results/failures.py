"""Failed runs, as people read them: one headline per distinct error, and the full tracebacks on demand.

A run's ``error`` column holds the end of its traceback (or the reason it timed out or died). The
launch summary, ``sweeper status`` and the live display group runs by :func:`headline`, the line that
names the error (``NameError: name 'nmpy' is not defined``); ``sweeper errors DIR`` prints the texts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sweeper.errors import command
from sweeper.results.schema import run_artifacts

if TYPE_CHECKING:
    import pandas as pd

FAILED = ("failed", "timeout")
HEADLINE_CHARS = 200
SCREEN_LINES = 6  # lines of a traceback shown live, under the progress line


def headline(error: str | None) -> str:
    """The line that names an error: in a traceback, the exception line after the last frame; else
    the first line (a timeout's or a lost worker's reason)."""
    lines = _lines(error)
    if not lines:
        return "(no error text)"
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    after = [line for line in lines[frames[-1] + 1 :] if not line[:1].isspace()] if frames else []
    text = after[0] if after else lines[0]
    return text if len(text) <= HEADLINE_CHARS else text[: HEADLINE_CHARS - 3] + "..."


def screen_tail(error: str | None, lines: int = SCREEN_LINES) -> list[str]:
    """The last lines of an error, to show on screen without flooding it."""
    return _lines(error)[-lines:]


def _lines(error: object) -> list[str]:
    """The non-blank lines of an error; a missing one (None, or NaN read back from Parquet) has none."""
    text = error if isinstance(error, str) else ""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def error_groups(errors: Iterable[str | None]) -> list[tuple[str, int]]:
    """(headline, number of runs) per distinct error, most frequent first."""
    counts = Counter(headline(e) for e in errors)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def failed_rows(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty or "status" not in table.columns:
        return table.iloc[0:0]
    return table[table["status"].isin(FAILED)]


def table_groups(table: pd.DataFrame) -> list[tuple[str, int]]:
    return error_groups(failed_rows(table)["error"].tolist())


def group_lines(groups: list[tuple[str, int]], folder: str | Path, shown: int = 5) -> list[str]:
    """Summary lines: ``75 runs: NameError: ...`` per error, then where the tracebacks are."""
    if not groups:
        return []
    n = sum(c for _, c in groups)
    out = [f"failed runs by error ({n} in all; `{command('errors', folder)}` prints the tracebacks):"]
    out += [f"  {count} run{'s' if count != 1 else ''}: {text}" for text, count in groups[:shown]]
    if len(groups) > shown:
        rest = sum(c for _, c in groups[shown:])
        out.append(f"  {rest} more runs with {len(groups) - shown} other errors")
    return out


def describe_errors(folder: str | Path, trial: int | None = None) -> str:
    """``sweeper errors DIR``: each distinct error's full text once, with the runs that raised it;
    ``trial``: the full text of every failed run of that trial."""
    from sweeper.results.table import load

    table = load(folder)
    bad = failed_rows(table)
    where = Path(folder).resolve()
    if trial is not None:
        if table.empty or not (table["trial"] == trial).any():
            return f"{where}: trial {trial} has no recorded runs\n"
        bad = bad[bad["trial"] == trial]
        if bad.empty:
            return f"{where}: no run of trial {trial} failed\n"
        parts = [
            f"== trial {trial} replicate {r.replicate} ({r.status}, attempt {r.attempt}, node {r.node})\n"
            f"{(r.error or '(no error text)').rstrip()}\n{_output(where, trial, int(r.replicate))}"
            for r in bad.itertuples()
        ]
        return "\n".join(parts)
    if bad.empty:
        return f"{where}: no failed runs ({len(table)} recorded)\n"
    parts = []
    for text, count in error_groups(bad["error"].tolist()):
        runs = bad[bad["error"].map(headline) == text]
        first = runs.iloc[0]
        ids = ", ".join(f"{t}/{r}" for t, r in zip(runs["trial"][:10], runs["replicate"][:10], strict=True))
        more = f" and {count - 10} more" if count > 10 else ""
        parts.append(
            f"== {count} run{'s' if count != 1 else ''}: {text}\n"
            f"   trial/replicate: {ids}{more}\n"
            f"   first of them (trial {first['trial']}, replicate {first['replicate']}):\n"
            f"{str(first['error'] or '(no error text)').rstrip()}\n"
            + _output(where, int(first["trial"]), int(first["replicate"]))
        )
    parts.append(f"(`{command('errors', where, '--trial', 'N')}` prints every failed run of trial N)\n")
    return "\n".join(parts)


def _output(folder: Path, trial: int, replicate: int) -> str:
    """Where the run's printed output is, when it kept any (a command's; a Python objective's on Ray)."""
    run = folder / run_artifacts(trial, replicate)
    kept = [str(run / name) for name in ("stdout.log", "stderr.log") if (run / name).is_file()]
    return f"   its output: {', '.join(kept)}\n" if kept else ""
