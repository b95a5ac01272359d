"""Parquet read by the executors themselves: Spark schedules slices, pyarrow reads them.

Spark's own path from a Parquet file to a Python worker turns every value into a JVM row and
back into Arrow: for the model's 120 columns that costs more than validating and scoring the
row (benchmarks/RESULTS.md §11). For Parquet on a local path or file:// URI (a laptop, or a
folder every node mounts; other URIs go through Spark's reader) the driver therefore lists the
file's row groups, cuts them into slices of at most `SLICE_ROWS` rows and runs one Spark task
per slice (`spark.range(len(slices))`, no shuffle); each task reads its slice with pyarrow and
runs the same checker and scorer. Row numbers come from the row groups' own offsets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from batch.executor import Piece, Scoring
from contract.spec import FeatureSpec

SLICE_ROWS = 100_000
BATCH_ROWS = 10_000  # Spark's default Arrow batch size


@dataclass(frozen=True)
class Slice:
    file: str  # as pyarrow's filesystem names it
    row_group: int
    start: int  # rows within the row group
    stop: int
    first_row: int  # 0-based position of the slice's first row in the whole input


@dataclass(frozen=True)
class ParquetInput:
    uri: str
    schema: pa.Schema
    slices: tuple[Slice, ...]

    @property
    def num_rows(self) -> int:
        return sum(s.stop - s.start for s in self.slices)


def open_input(uri: str, slice_rows: int = SLICE_ROWS) -> ParquetInput:
    """The file (or folder of files, in name order) cut into slices; raises on anything unreadable."""
    filesystem, path = pafs.LocalFileSystem(), local_path(uri)
    info = filesystem.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        selector = pafs.FileSelector(path, recursive=True)
        files = sorted(
            f.path
            for f in filesystem.get_file_info(selector)
            if f.type == pafs.FileType.File and not f.base_name.startswith(("_", "."))
        )
    else:
        files = [path]
    schema: pa.Schema | None = None
    slices: list[Slice] = []
    first_row = 0
    for file in files:
        metadata = pq.ParquetFile(file, filesystem=filesystem).metadata
        file_schema = metadata.schema.to_arrow_schema()
        schema = schema or file_schema
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            for start in range(0, rows, slice_rows):
                stop = min(start + slice_rows, rows)
                slices.append(Slice(file, group, start, stop, first_row))
                first_row += stop - start
    if schema is None:
        raise ValueError("no Parquet file found")
    return ParquetInput(uri, schema, tuple(slices))


@dataclass(frozen=True)
class ScoreSlices:
    """What a task does with its slices: read each with pyarrow, score it, write its part or hand Spark its rows.

    Called by an RDD's `mapPartitionsWithIndex` over one empty partition per slice (`task`: the
    executors write their parts, only the reports come back), or by `mapInArrow` over
    `spark.range(len(slices))` when Spark writes the output (`__call__`: the rows go back
    through the JVM).
    """

    scoring: Scoring
    slices: tuple[Slice, ...]
    columns: tuple[str, ...]
    text_columns: tuple[str, ...] = ()
    """Columns read as dictionaries (the levels): each distinct text is decoded and looked up once."""

    def parts(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        return self.scoring.write_parts(self._pieces(indices))

    def task(self, index: int, rows: Iterator[Any]) -> Iterator[dict[str, Any]]:
        """Task `index` writes slice `index`'s part (none past the last slice), then reads its input, which is empty.

        The slice comes from the partition's index, not from its rows: a worker's first task would
        otherwise wait for the JVM to send that empty input, about 40 ms after the task's command
        (RESULTS.md §24). PySpark expects the input read to its end before the task ends."""
        yield from self.parts([index] if index < len(self.slices) else [])
        if any(True for _ in rows):
            raise RuntimeError(f"task {index} was given rows: its input must be empty")

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return self.scoring.rows_for_spark(self._pieces(i for batch in tasks for i in batch.column(0).to_pylist()))

    def _pieces(self, indices: Iterable[int]) -> Iterator[Piece]:
        for index in indices:
            yield from read_slice(self.slices[index], self.columns, self.text_columns)


def read_slice(
    part: Slice, columns: tuple[str, ...], text_columns: tuple[str, ...] = (), batch_rows: int = BATCH_ROWS
) -> Iterator[Piece]:
    """One slice's rows in batches, numbered by their place in the input; one output part per slice."""
    source = pq.ParquetFile(part.file, read_dictionary=text_columns or None)
    seen = 0
    # One thread: Spark already runs a task per core.
    batches = source.iter_batches(
        batch_size=batch_rows, row_groups=[part.row_group], columns=columns, use_threads=False
    )
    for batch in batches:
        low, high = max(part.start - seen, 0), min(part.stop - seen, batch.num_rows)
        seen += batch.num_rows
        if high > low:
            piece = batch.slice(low, high - low)
            first = part.first_row + (seen - batch.num_rows + low) - part.start
            row_numbers = np.arange(first + 1, first + 1 + piece.num_rows, dtype=np.int64)
            yield Piece(piece, row_numbers, part.first_row)
        if seen >= part.stop:
            break


def text_columns(schema: pa.Schema, spec: FeatureSpec) -> tuple[str, ...]:
    """The categorical columns the file stores as text: read as dictionaries (`ScoreSlices.text_columns`)."""
    return tuple(name for name in spec.categorical_names if pa.types.is_string(schema.field(name).type))


def readable_here(uri: str) -> bool:
    """Local paths (and file:// URIs), which every executor of a laptop run, or a shared mount, can open."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    return uri.removeprefix("file://")
