"""Failed runs are grouped by their error (its type and the line that raised it), whatever the error
column holds."""

from __future__ import annotations

import pandas as pd

from sweeper.results.failures import headline, screen_tail, table_groups


def test_a_failed_row_without_error_text_is_grouped_not_a_crash() -> None:
    # An empty error read back from Parquet through pandas is NaN, not None or "".
    table = pd.DataFrame(
        {
            "status": ["failed", "failed", "failed", "complete"],
            "error": [float("nan"), None, "Traceback:\n  File 'x'\nValueError: bad", None],
        }
    )
    assert table_groups(table) == [("(no error text)", 2), ("ValueError: bad", 1)]
    assert screen_tail(float("nan")) == []  # type: ignore[arg-type]
    assert headline("lost with its worker\nmore") == "lost with its worker"


def _raised(message: str, line: int = 3, kind: str = "ValueError") -> str:
    return (
        'Traceback (most recent call last):\n  File "/work/lib/run.py", line 9, in call\n    f()\n'
        f'  File "/home/me/obj.py", line {line}, in train\n    raise {kind}(...)\n{kind}: {message}'
    )


def test_messages_that_hold_a_runs_values_are_one_error_raised_at_one_line() -> None:
    """``width 54 is too big`` and ``width 61 is too big`` are one bug, not a group per width."""
    errors = [_raised("width 54 is too big")] * 3 + [_raised(f"width {w} is too big") for w in (61, 62)]
    errors += [
        _raised("other", line=7),
        _raised("width 54 is too big", kind="KeyError"),
        "timed out after 5s",
    ]
    table = pd.DataFrame({"status": ["failed"] * len(errors), "error": errors})
    assert table_groups(table) == [
        ("ValueError: width 54 is too big (and 2 other messages raised at obj.py:3)", 5),
        ("KeyError: width 54 is too big", 1),
        ("ValueError: other", 1),
        ("timed out after 5s", 1),
    ]
