"""Failed runs, as people read them: one headline per distinct error, and the full tracebacks on demand.

A run's ``error`` column holds the end of its traceback (or the reason it timed out or died). The
launch summary, ``sweeper status`` and ``sweeper errors DIR`` group runs by :func:`error_key`, the
exception's type and the line that raised it, and show each group's :func:`headline`, the line that
names the error (``NameError: name 'nmpy' is not defined``).
"""

from __future__ import annotations

import re
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


_FRAME = re.compile(r'\s*File "(?P<file>.+)", line (?P<line>\d+)')


def error_key(error: str | None) -> str:
    """What makes failures one error: the exception's type and the line that raised it, since its
    message may hold the run's own values (``width 54 is too big``, ``width 61 ...``); an error
    without a traceback (a timeout, a lost worker) is its headline."""
    frames = [line for line in _lines(error) if line.startswith("  File ")]
    head = headline(error)
    return f"{head.split(':', 1)[0]} at {frames[-1].strip()}" if frames else head


def error_groups(errors: Iterable[str | None]) -> list[tuple[str, int]]:
    """(headline, number of runs) per distinct error, most frequent first."""
    return [(text, n) for _, text, n in _grouped(errors)]


def _grouped(errors: Iterable[str | None]) -> list[tuple[str, str, int]]:
    """(key, headline, runs) per error: the most frequent message stands for the others raised at
    the same line, which are counted."""
    messages: dict[str, Counter[str]] = {}
    where: dict[str, str] = {}
    for e in errors:
        key = error_key(e)
        messages.setdefault(key, Counter())[headline(e)] += 1
        frame = _FRAME.match(key.split(" at ", 1)[-1])
        if frame and key not in where:
            where[key] = f"{Path(frame['file']).name}:{frame['line']}"
    out = []
    for key, texts in messages.items():
        (text, _), *others = sorted(texts.items(), key=lambda kv: (-kv[1], kv[0]))
        if others:
            n = len(others)
            text += f" (and {n} other message{'s' if n > 1 else ''} raised at {where[key]})"
        out.append((key, text, sum(texts.values())))
    return sorted(out, key=lambda g: (-g[2], g[1]))


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
    for key, text, count in _grouped(bad["error"].tolist()):
        runs = bad[bad["error"].map(error_key) == key]
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
