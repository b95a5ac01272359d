"""Parquet read by the executors themselves: Spark schedules slices, pyarrow reads them.

Spark's own path from a Parquet file to a Python worker turns every value into a JVM row and
back into Arrow: for the model's 120 columns that costs more than validating and scoring the
row (benchmarks/RESULTS.md §9). For Parquet input the driver therefore lists the file's row
groups, cuts them into slices of at most `SLICE_ROWS` rows, and hands Spark one small task
row per slice; each task reads its slice with pyarrow (local paths, or any URI pyarrow's
local path or file:// URI: a laptop, or a folder every node mounts; other URIs go through
Spark's reader) and runs the same checker and scorer. Only the
scores travel back through the JVM. Row numbers come from the row groups' own offsets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from batch.executor import ModelRuntime, ScoreBatches, runtime_for

SLICE_ROWS = 100_000
BATCH_ROWS = 10_000  # Spark's default Arrow batch size
TASK_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row_group", pa.int64()),
        ("start", pa.int64()),
        ("stop", pa.int64()),
        ("first_row", pa.int64()),
    ]
)


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

    def tasks(self) -> list[tuple[str, int, int, int, int]]:
        return [(s.file, s.row_group, s.start, s.stop, s.first_row) for s in self.slices]


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
class ReadAndScore:
    """The function given to `mapInArrow` over the task rows: read each slice, score it."""

    score: ScoreBatches
    columns: tuple[str, ...]

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        runtime = runtime_for(self.score.locate())
        schema = self.score.schema()
        for task_batch in tasks:
            for task in task_batch.to_pylist():
                yield from self._slice(runtime, schema, Slice(**task))

    def _slice(self, runtime: ModelRuntime, schema: pa.Schema, part: Slice) -> Iterator[pa.RecordBatch]:
        source = pq.ParquetFile(part.file)
        seen = 0
        for batch in source.iter_batches(batch_size=BATCH_ROWS, row_groups=[part.row_group], columns=self.columns):
            low, high = max(part.start - seen, 0), min(part.stop - seen, batch.num_rows)
            seen += batch.num_rows
            if high <= low:
                if seen >= part.stop:
                    break
                continue
            piece = batch.slice(low, high - low)
            first = part.first_row + (seen - batch.num_rows + low) - part.start
            row_numbers = np.arange(first + 1, first + 1 + piece.num_rows, dtype=np.int64)
            yield from self.score.score(runtime, schema, piece, row_numbers)
            if seen >= part.stop:
                break


def readable_here(uri: str) -> bool:
    """Local paths (and file:// URIs), which every executor of a laptop run, or a shared mount, can open."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    return uri.removeprefix("file://")
