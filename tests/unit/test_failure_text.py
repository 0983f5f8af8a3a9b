"""Failed runs are grouped by their error's headline, whatever the error column holds."""

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
