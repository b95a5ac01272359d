"""Parquet slices: every row read once, numbered by its place in the input, across row groups and files."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.executor import PROBLEMS, ROW_NUMBER, Scoring
from batch.parquet_slices import (
    MAX_CUTS,
    SKIP_COST,
    ParquetInput,
    ScoreSlices,
    Slice,
    cut_row_group,
    group_slices,
    open_input,
)
from contract.spec import FeatureSpec


def slice_tasks(source: Any, model_path: Path, spec: FeatureSpec, staging: str | None = None) -> ScoreSlices:
    scoring = Scoring(str(model_path), "SK_ID_CURR", source.schema.field("SK_ID_CURR").type, staging=staging)
    # Two slices a task where there are enough: tasks of several slices, and of one.
    tasks = tuple(tuple(range(start, min(start + 2, len(source.slices)))) for start in range(0, len(source.slices), 2))
    return ScoreSlices(scoring, source.slices, (*spec.names, "SK_ID_CURR"), tuple(spec.categorical_names), tasks)


def run_tasks(source: Any, model_path: Path, spec: FeatureSpec) -> pa.Table:
    """What the executors do for Spark's writer, in this process: the task ids -> every row."""
    tasks = slice_tasks(source, model_path, spec)
    task_ids = pa.RecordBatch.from_pydict({"id": list(range(len(tasks.tasks)))})
    return pa.Table.from_batches(list(tasks(iter([task_ids]))), schema=tasks.scoring.rows_schema())


@pytest.mark.parametrize("slots", [1, 8, 24])
def test_slices_cover_every_row_once_in_input_order(
    portfolio: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path, slots: int
) -> None:
    table = pq.read_table(portfolio.parquet)
    folder = tmp_path / "book"
    folder.mkdir()
    # Two files (read in name order), five row groups of 700 rows or fewer: more slots than that cut them.
    pq.write_table(table.slice(0, 1_500), folder / "part-0.parquet", row_group_size=700)
    pq.write_table(table.slice(1_500), folder / "part-1.parquet", row_group_size=700)
    (folder / "_SUCCESS").write_text("")  # Spark's marker files are skipped

    source = open_input(str(folder), slots=slots, min_slice_rows=100)
    assert source.num_rows == table.num_rows
    if slots == 1:
        assert len(source.slices) == 5  # a slice per row group
    else:
        assert len(source.slices) > 5  # some groups cut
    out = run_tasks(source, model_path, spec).sort_by(ROW_NUMBER)
    assert out.column(ROW_NUMBER).to_pylist() == list(range(1, table.num_rows + 1))
    assert out.column("SK_ID_CURR").to_pylist() == table.column("SK_ID_CURR").to_pylist()
    numbers, problems = out.column(ROW_NUMBER).to_pylist(), out.column(PROBLEMS).to_pylist()
    rejected = [n for n, p in zip(numbers, problems, strict=True) if p]
    assert rejected == [row + 1 for row in portfolio.bad_rows]


def slice_rows(source: ParquetInput) -> list[tuple[int, int]]:
    """(row group, rows) of each slice."""
    return [(s.row_group, s.stop - s.start) for s in source.slices]


def test_row_groups_are_cut_only_to_keep_every_slot_busy(tmp_path: Path) -> None:
    book = pa.table({"x": list(range(60_000))})
    many = tmp_path / "many.parquet"
    pq.write_table(book, many, row_group_size=20_000)
    assert slice_rows(open_input(str(many), slots=2)) == [(0, 20_000), (1, 20_000), (2, 20_000)]  # 3 groups, 2 slots

    one = tmp_path / "one.parquet"
    pq.write_table(book, one)  # pyarrow's default: one group for up to a million rows
    assert [s.row_group for s in open_input(str(one), slots=4).slices] == [0] * 4
    lengths = [rows for _, rows in slice_rows(open_input(str(one), slots=4))]
    assert sum(lengths) == 60_000 and lengths == sorted(lengths, reverse=True) and lengths[0] > lengths[-1]
    assert len(open_input(str(one), slots=16).slices) == 6  # 10,000 rows (a batch) a slice on average
    assert len(open_input(str(one), slots=400, min_slice_rows=1).slices) == MAX_CUTS  # however many slots
    assert len(open_input(str(one), slots=1).slices) == 1


@pytest.mark.parametrize(("rows", "pieces"), [(1_000_000, 2), (307_511, 8), (60_000, 6), (5, 1)])
def test_a_cut_row_group_costs_the_same_in_every_slice(rows: int, pieces: int) -> None:
    bounds = cut_row_group(rows, pieces, skip_cost=SKIP_COST)
    assert bounds[0] == 0 and bounds[-1] == rows and len(bounds) == pieces + 1
    assert bounds == sorted(set(bounds))
    # Each slice reads its own rows and decodes the ones before it, at SKIP_COST a row.
    costs = [stop - start + SKIP_COST * start for start, stop in itertools.pairwise(bounds)]
    assert max(costs) - min(costs) <= 1  # rounding to whole rows
    if pieces > 1:
        assert bounds[1] > rows / pieces  # the first slice, which skips nothing, is the longest


def test_a_row_group_of_few_rows_is_cut_into_no_empty_slice() -> None:
    bounds = cut_row_group(10, 10)
    assert bounds[0] == 0 and bounds[-1] == 10 and bounds == sorted(set(bounds))  # each bound once
    assert cut_row_group(10, 5, skip_cost=0) == [0, 2, 4, 6, 8, 10]  # nothing to skip: even slices


def row_groups(*rows: int) -> tuple[Slice, ...]:
    """One slice per whole row group of these sizes, in one file."""
    starts = list(itertools.accumulate(rows, initial=0))
    return tuple(Slice("book.parquet", group, 0, n, starts[group]) for group, n in enumerate(rows))


def test_slices_are_grouped_into_a_task_per_slot_until_tasks_grow_long() -> None:
    ten = row_groups(*[100_000] * 10)
    assert group_slices(ten, slots=2) == ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))  # 500,000 rows a task
    assert group_slices(ten[:4], slots=1) == ((0, 1, 2, 3),)
    assert group_slices(ten, slots=2, task_rows=250_000) == ((0, 1), (2, 3, 4), (5, 6), (7, 8, 9))  # 2 per slot
    assert group_slices(ten, slots=16) == tuple((index,) for index in range(10))  # no more tasks than slices
    assert group_slices((), slots=2) == ()
    # Uneven groups, 1,800,000 rows: four tasks of about 450,000 rows wanted, but a slice is never
    # split, so the 900,000-row one is a task alone (and the task left empty is dropped).
    assert group_slices(row_groups(*[100_000] * 9, 900_000), slots=2) == ((0, 1, 2, 3), (4, 5, 6, 7, 8), (9,))


def test_the_slices_of_a_cut_row_group_make_tasks_of_the_same_cost() -> None:
    bounds = cut_row_group(1_000_000, 4)
    cut = tuple(Slice("book.parquet", 0, start, stop, start) for start, stop in itertools.pairwise(bounds))
    assert group_slices(cut, slots=2) == ((0, 1), (2, 3))  # the first two hold more rows, the last two skip more


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "book.parquet"
    source.write_text("SK_ID_CURR,AMT_CREDIT\n1,2\n")
    with pytest.raises(pa.ArrowInvalid):
        open_input(str(source))
