"""The streamed compaction keeps exactly the rows, in exactly the order, that reading the folder
whole keeps (what compaction wrote before it streamed: ``read_folder``'s table), whatever the keys,
the reruns and the row groups, and its file can be streamed again."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweeper.errors import SweeperError
from sweeper.results import compaction
from sweeper.results.reading import file_list, read_folder
from sweeper.results.table import TableWriter


def _write(folder: Path, seed: int, text_keys: bool = False) -> None:
    """A compact file and parts as a resumed sweep leaves them: reruns of a fifth of the trials in
    later parts and in the same part, and a later part with a column the first files lack."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    n = 400
    trial = np.concatenate([rng.permutation(n), rng.choice(n, n // 5, replace=False), [3, 3]])
    rep = rng.integers(0, 3, len(trial)).astype(np.int32)
    rep[-2:] = 1  # (trial 3, replicate 1) twice in the last part
    rows = pa.table(
        {
            "trial": [f"t{k:04d}" for k in trial] if text_keys else trial,
            "replicate": rep,
            "status": rng.choice(["complete", "failed"], len(trial)),
            "value": rng.normal(size=len(trial)),
            "n": np.arange(len(trial)),
        }
    )
    cuts = [0, 250, 300, 420, 455, len(trial)]
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        part = rows.slice(a, b - a)
        if i == 4:  # a metric recorded from this resume on: a column the earlier files lack
            part = part.append_column("extra", pa.array(rng.normal(size=part.num_rows)))
        name = "compact-000004" if i == 0 else f"part-{i + 4:06d}"
        pq.write_table(part, folder / f"{name}.parquet", row_group_size=100)


@pytest.mark.parametrize("row_group", [7, 64, 65_536])
@pytest.mark.parametrize(("seed", "text_keys"), [(0, False), (1, False), (2, True)])
def test_streamed_compaction_keeps_the_rows_and_order_of_reading_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, row_group: int, seed: int, text_keys: bool
) -> None:
    folder = tmp_path / "trials"
    _write(folder, seed, text_keys)
    whole = read_folder(folder)  # the table compaction wrote when it read the folder whole
    assert whole.num_rows < 490  # the reruns were dropped ...
    monkeypatch.setattr(compaction, "ROW_GROUP", row_group)
    schema = pq.read_schema(folder / "compact-000004.parquet")
    TableWriter(folder, schema).close()
    (compact,) = file_list(folder)
    assert compact.name == "compact-000008.parquet" and list(folder.iterdir()) == [compact]
    got = pq.read_table(compact)
    assert got.equals(whole)  # ... and the same rows kept, in the same order, same columns
    meta = pq.ParquetFile(compact).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [row_group] * (got.num_rows // row_group) + [got.num_rows % row_group] * (
        got.num_rows % row_group > 0
    )  # streamed in whole row groups, the rest in the last
    # the compact file streams again: a rerun after it is folded in, the rest stays as it was
    again = whole.slice(0, 1).set_column(4, "n", pa.array([10_000]))
    pq.write_table(again.select(whole.column_names), folder / "part-000009.parquet")
    TableWriter(folder, got.schema).close()
    twice = pq.read_table(file_list(folder)[0])
    assert twice.num_rows == whole.num_rows and twice.column("n").to_pylist()[-1] == 10_000
    assert twice.slice(0, whole.num_rows - 1).equals(whole.slice(1))


def test_a_folder_without_keys_is_concatenated_as_written(tmp_path: Path) -> None:
    folder = tmp_path / "history"
    _write(folder, 3)
    schema = pq.read_schema(folder / "compact-000004.parquet")
    expected = read_folder(folder, keys=())
    TableWriter(folder, schema, keys=()).close()
    assert pq.read_table(file_list(folder)[0]).equals(expected)
    assert expected.num_rows == 482  # every row, the reruns too


def test_parts_of_clashing_types_are_left_as_they_are_and_named_by_the_reader(tmp_path: Path) -> None:
    folder = tmp_path / "trials"
    folder.mkdir()
    pq.write_table(pa.table({"trial": [0], "replicate": [0], "v": [1.0]}), folder / "part-000000.parquet")
    pq.write_table(pa.table({"trial": [1], "replicate": [0], "v": ["x"]}), folder / "part-000001.parquet")
    with pytest.raises(SweeperError, match=r"part-000001.parquet: column 'v' is string"):
        TableWriter(folder, pa.schema([("trial", pa.int64())])).close()
    assert sorted(p.name for p in folder.iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
