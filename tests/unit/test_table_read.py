"""Reading a parts folder: the last row of each key wins, in the order written or sorted by key,
the same whether the keys pack into one integer (the fast path) or not (Arrow's group_by)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sweeper
from sweeper.results.reading import read_folder


def _parts(folder: Path, seed: int, keys: dict[str, object]) -> pd.DataFrame:
    """Three files of rows in a shuffled order, a fifth of them rewritten in a later file (or in
    the same one); returns every row written, oldest first, with its write order in ``n``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    n = 300
    frame = pd.DataFrame({k: v(rng, n) if callable(v) else v for k, v in keys.items()})
    again = frame.sample(frac=0.2, random_state=seed)
    rows = pd.concat([frame.sample(frac=1.0, random_state=seed + 1), again]).reset_index(drop=True)
    rows["value"] = rng.normal(size=len(rows))
    rows["status"] = "complete"
    rows["n"] = np.arange(len(rows))
    cuts = sorted(rng.choice(np.arange(1, len(rows)), size=2, replace=False))
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(rows)], strict=True)):
        name = "compact-000001" if i == 0 else f"part-{i + 1:06d}"
        pq.write_table(pa.Table.from_pandas(rows.iloc[a:b], preserve_index=False), folder / f"{name}.parquet")
    return rows


def _oracle(rows: pd.DataFrame, keys: list[str], ordered: bool) -> list[int]:
    last = rows.drop_duplicates(keys, keep="last")
    return list((last.sort_values(keys, kind="stable") if ordered else last.sort_values("n"))["n"])


KEYS = {
    "packed": {
        "trial": lambda rng, n: rng.permutation(n) * 7,
        "replicate": lambda rng, n: rng.integers(0, 3, n).astype(np.int32),
    },
    "negative": {"trial": lambda rng, n: rng.permutation(n) - 150, "replicate": 0},
    "text": {"trial": lambda rng, n: [f"t{v:04d}" for v in rng.permutation(n)], "replicate": 1},
}


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_last_row_of_each_key_wins(tmp_path: Path, kind: str, seed: int) -> None:
    rows = _parts(tmp_path / "t", seed, KEYS[kind])
    keys = ["trial", "replicate"]
    for ordered in (False, True):
        got = read_folder(tmp_path / "t", ordered=ordered).column("n").to_pylist()
        assert got == _oracle(rows, keys, ordered)


def test_a_key_written_once_in_key_order_is_read_as_is(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    folder.mkdir()
    table = pa.table({"trial": [0, 1, 2, 3], "replicate": [0, 0, 0, 0], "value": [1.0, 2.0, 3.0, 4.0]})
    pq.write_table(table.slice(0, 2), folder / "compact-000001.parquet")
    pq.write_table(table.slice(2), folder / "part-000002.parquet")
    assert read_folder(folder, ordered=True).equals(table)


def test_load_is_sorted_by_trial_then_replicate_with_the_last_rewrite(tmp_path: Path) -> None:
    rows = _parts(tmp_path / "exp" / "trials", 5, KEYS["packed"])
    df = sweeper.load(tmp_path / "exp" / "trials")
    assert list(df["n"]) == _oracle(rows, ["trial", "replicate"], ordered=True)
    assert list(df.index) == list(range(len(df)))
    assert str(df["trial"].dtype) == "Int64"
