"""Parquet slices: every row read once, numbered by its place in the input, across row groups and files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.executor import PROBLEMS, ROW_NUMBER, Scoring
from batch.parquet_slices import ScoreSlices, open_input
from contract.spec import FeatureSpec


def slice_tasks(source: Any, model_path: Path, spec: FeatureSpec, staging: str | None = None) -> ScoreSlices:
    scoring = Scoring(str(model_path), "SK_ID_CURR", source.schema.field("SK_ID_CURR").type, staging=staging)
    return ScoreSlices(scoring, source.slices, (*spec.names, "SK_ID_CURR"), tuple(spec.categorical_names))


def run_tasks(source: Any, model_path: Path, spec: FeatureSpec) -> pa.Table:
    """What the executors do for Spark's writer, in this process: the task ids -> every row."""
    tasks = slice_tasks(source, model_path, spec)
    task_ids = pa.RecordBatch.from_pydict({"id": list(range(len(source.slices)))})
    return pa.Table.from_batches(list(tasks(iter([task_ids]))), schema=tasks.scoring.rows_schema())


@pytest.mark.parametrize("slice_rows", [300, 700, 5_000])
def test_slices_cover_every_row_once_in_input_order(
    portfolio: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path, slice_rows: int
) -> None:
    table = pq.read_table(portfolio.parquet)
    folder = tmp_path / "book"
    folder.mkdir()
    # Two files (read in name order), row groups of 700 rows: slices cut across and within groups.
    pq.write_table(table.slice(0, 1_500), folder / "part-0.parquet", row_group_size=700)
    pq.write_table(table.slice(1_500), folder / "part-1.parquet", row_group_size=700)
    (folder / "_SUCCESS").write_text("")  # Spark's marker files are skipped

    source = open_input(str(folder), slice_rows=slice_rows)
    assert source.num_rows == table.num_rows
    out = run_tasks(source, model_path, spec).sort_by(ROW_NUMBER)
    assert out.column(ROW_NUMBER).to_pylist() == list(range(1, table.num_rows + 1))
    assert out.column("SK_ID_CURR").to_pylist() == table.column("SK_ID_CURR").to_pylist()
    numbers, problems = out.column(ROW_NUMBER).to_pylist(), out.column(PROBLEMS).to_pylist()
    rejected = [n for n, p in zip(numbers, problems, strict=True) if p]
    assert rejected == [row + 1 for row in portfolio.bad_rows]


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "book.parquet"
    source.write_text("SK_ID_CURR,AMT_CREDIT\n1,2\n")
    with pytest.raises(pa.ArrowInvalid):
        open_input(str(source))
