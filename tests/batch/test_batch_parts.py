"""Executors' own output parts: every row once, in input order, and only the reported attempts' files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from batch.executor import ROW_NUMBER, Scoring
from batch.parquet_slices import open_input
from batch.parts import REJECTS, SCORED, SUCCESS_MARKER, commit, new_staging
from contract.spec import FeatureSpec
from tests.batch.test_batch_parquet_slices import run_tasks, slice_tasks


@pytest.fixture
def source(portfolio: Any) -> Any:
    return open_input(str(portfolio.parquet), slots=5, min_slice_rows=100)  # 5 slices, the later the shorter


def test_committed_parts_hold_what_spark_would_write(
    source: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path, portfolio: Any
) -> None:
    output = tmp_path / "out"
    staging = new_staging(str(output))
    tasks = slice_tasks(source, model_path, spec, staging)
    reports = [report for index in range(len(source.slices)) for report in tasks.parts([index])]
    committed = commit(str(output), staging, reports, tasks.scoring.schemas())

    rows = run_tasks(source, model_path, spec)  # the same slices, scored for Spark's writer
    is_reject = pc.is_valid(rows.column("problems"))
    expected_scored = rows.filter(pc.invert(is_reject)).select(tasks.scoring.schemas()[SCORED].names)
    expected_rejects = rows.filter(is_reject).select(tasks.scoring.schemas()[REJECTS].names)
    scored, rejects = pq.read_table(output / SCORED), pq.read_table(output / REJECTS)
    assert scored.equals(expected_scored) and rejects.equals(expected_rejects)  # files in name order = input order
    assert scored.column(ROW_NUMBER).to_pylist() == sorted(scored.column(ROW_NUMBER).to_pylist())
    assert (committed.scored, committed.rejected) == (scored.num_rows, rejects.num_rows)
    assert committed.rejected == len(portfolio.bad_rows) and committed.scored + committed.rejected == source.num_rows
    assert (output / SCORED / SUCCESS_MARKER).exists() and (output / REJECTS / SUCCESS_MARKER).exists()
    assert not Path(staging).exists()


def test_only_reported_attempts_are_committed(source: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path) -> None:
    output = tmp_path / "out"
    staging = new_staging(str(output))
    tasks = slice_tasks(source, model_path, spec, staging)
    # Slice 0 is run twice (a retried or speculative attempt): its files have other names, and
    # only the report Spark kept (the second) is committed; the first attempt's file is dropped.
    first_attempt = next(iter(tasks.parts([0])))
    reports = [report for index in range(len(source.slices)) for report in tasks.parts([index])]
    assert first_attempt["scored_file"] != reports[0]["scored_file"] and Path(first_attempt["scored_file"]).exists()
    commit(str(output), staging, reports, tasks.scoring.schemas())
    files = sorted(p.name for p in (output / SCORED).iterdir())
    assert files == sorted([SUCCESS_MARKER, *(f"part-{s.first_row:012d}.parquet" for s in source.slices)])
    assert pq.read_table(output / SCORED).num_rows == sum(r["scored_rows"] for r in reports)
    assert not Path(staging).exists()  # the unreported attempt's file went with the staging folder


def test_two_reports_for_one_part_are_refused(source: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path) -> None:
    output = tmp_path / "out"
    staging = new_staging(str(output))
    tasks = slice_tasks(source, model_path, spec, staging)
    twice = [*tasks.parts([0]), *tasks.parts([0])]
    with pytest.raises(RuntimeError, match="two reports for part 0"):
        commit(str(output), staging, twice, tasks.scoring.schemas())


def test_an_output_without_rows_still_has_its_schema(model_path: Path, spec: FeatureSpec, tmp_path: Path) -> None:
    output = tmp_path / "out"
    staging = new_staging(str(output))
    schemas = Scoring(str(model_path), "SK_ID_CURR", pa.int64()).schemas()
    commit(str(output), staging, [], schemas)
    assert pq.read_table(output / SCORED).schema.names == schemas[SCORED].names
    assert pq.read_table(output / REJECTS).num_rows == 0


def test_a_task_writes_the_parts_of_its_slices_and_a_task_past_the_last_writes_none(
    source: Any, model_path: Path, spec: FeatureSpec, tmp_path: Path
) -> None:
    tasks = slice_tasks(source, model_path, spec, new_staging(str(tmp_path / "out")))
    assert tasks.tasks[0] == (0, 1)  # two slices
    reports = list(tasks.task(0, iter([])))
    assert [report["part"] for report in reports] == [source.slices[0].first_row, source.slices[1].first_row]
    assert sum(report["scored_rows"] + report["rejects_rows"] for report in reports) == sum(
        s.stop - s.start for s in source.slices[:2]
    )
    assert list(tasks.task(len(tasks.tasks), iter([]))) == []  # Spark's one partition of an empty book
    with pytest.raises(RuntimeError, match="task 1 was given rows"):
        list(tasks.task(1, iter([object()])))
