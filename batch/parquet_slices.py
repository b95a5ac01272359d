"""Parquet read by the executors themselves: Spark schedules slices, pyarrow reads them.

Spark's own path from a Parquet file to a Python worker turns every value into a JVM row and
back into Arrow: for the model's 120 columns that costs more than validating and scoring the
row (benchmarks/RESULTS.md §11). For Parquet on a local path or file:// URI (a laptop, or a
folder every node mounts; other URIs go through Spark's reader) the driver therefore lists the
file's row groups, cuts them into slices (`open_input`), groups consecutive slices into tasks
(`group_slices`) and runs them as Spark tasks (no shuffle); each task reads its slices with
pyarrow and runs the same checker and scorer. Row numbers come from the row groups' own offsets.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from batch.executor import Piece, Scoring
from contract.spec import FeatureSpec

BATCH_ROWS = 10_000  # Spark's default Arrow batch size
TASK_ROWS = 500_000
"""The rows a task aims at once there are more than enough to give every slot one: as each task
ends, its worker waits 10-40 ms for the JVM's end-of-task work (RESULTS.md §25), about 1% of the
2-2.5 s a core takes to score 500,000 rows. More, shorter tasks only past that: a progress line
per task, a failed task retried alone. (Slices are not cut for it: a task holds whole slices.)"""
SKIP_COST = 0.16
"""What decoding a row costs, as a share of reading and scoring it (about 0.75 of 4.7 µs in a
job's task, RESULTS.md §25). pyarrow reads a row group from its first row, so a slice that starts
inside one decodes every row before its start, and drops it."""
MAX_CUTS = 8
"""The most slices a row group is cut into, whatever the slots (`spark.default.parallelism` can be
set to hundreds): a ninth slice makes each 5% cheaper, a tenth 4%, while each decodes more of the
rows before it again."""


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


def open_input(uri: str, slots: int = 1, min_slice_rows: int = BATCH_ROWS) -> ParquetInput:
    """The file (or folder of files, in name order) cut into slices; raises on anything unreadable.

    A row group is one slice, unless the job would then leave some of its `slots` (the tasks
    that run at once) idle: a row group is cut into as many slices as its share of all the rows
    asks of the slots, at most `MAX_CUTS`, and of at least `min_slice_rows` rows each on average;
    where it is cut, the later slices are the shorter, since each one first decodes what comes
    before it (`cut_row_group`).
    """
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
    groups: list[tuple[str, int, int]] = []  # file, row group, rows
    for file in files:
        metadata = pq.ParquetFile(file, filesystem=filesystem).metadata
        schema = schema or metadata.schema.to_arrow_schema()
        groups += [(file, group, metadata.row_group(group).num_rows) for group in range(metadata.num_row_groups)]
    if schema is None:
        raise ValueError("no Parquet file found")
    total = sum(rows for _, _, rows in groups)
    slices: list[Slice] = []
    first_row = 0
    for file, group, rows in groups:
        if not rows:
            continue
        wanted = math.ceil(slots * rows / total)
        bounds = cut_row_group(rows, max(1, min(wanted, MAX_CUTS, rows // max(min_slice_rows, 1))))
        for start, stop in itertools.pairwise(bounds):
            slices.append(Slice(file, group, start, stop, first_row + start))
        first_row += rows
    return ParquetInput(uri, schema, tuple(slices))


def cut_row_group(rows: int, pieces: int, skip_cost: float = SKIP_COST) -> list[int]:
    """Where to cut a row group of `rows` into `pieces` slices that cost the same to read and score.

    Slice i starts at b(i) and costs its own rows plus `skip_cost` per row before it:
    b(i+1) - b(i) + skip_cost * b(i) = C for every slice, so b(i) = C * (1 - (1 - skip_cost)**i) / skip_cost.
    Returns the bounds, 0 first and `rows` last, each once (fewer slices when rows are too few)."""
    if skip_cost <= 0:  # nothing skipped costs anything: even slices
        inner = [round(rows * index / pieces) for index in range(1, pieces)]
    else:
        keep = 1 - skip_cost
        cost = rows * skip_cost / (1 - keep**pieces)
        inner = [round(cost * (1 - keep**index) / skip_cost) for index in range(1, pieces)]
    return sorted({0, *inner, rows})


def group_slices(slices: tuple[Slice, ...], slots: int, task_rows: int = TASK_ROWS) -> tuple[tuple[int, ...], ...]:
    """Consecutive slices into tasks of about the same cost (a task: the indices of its slices).

    A task per slot while each would hold about `task_rows` rows or fewer, else up to a multiple of
    the slots (never more tasks than slices); a slice's cost is its rows plus the rows it decodes to
    skip (`SKIP_COST`), and each slice goes to the task its cost's midpoint falls in (a task that
    gets none is dropped)."""
    if not slices:
        return ()
    costs = [s.stop - s.start + SKIP_COST * s.start for s in slices]
    rows = sum(s.stop - s.start for s in slices)
    per_slot = max(slots, 1)
    count = min(len(slices), per_slot * max(1, math.ceil(rows / (per_slot * task_rows))))
    total, before = sum(costs), 0.0
    tasks: list[list[int]] = [[] for _ in range(count)]
    for index, cost in enumerate(costs):
        tasks[min(int((before + cost / 2) * count / total), count - 1)].append(index)
        before += cost
    return tuple(tuple(task) for task in tasks if task)


@dataclass(frozen=True)
class ScoreSlices:
    """What a task does with its slices: read each with pyarrow, score it, write its part or hand Spark its rows.

    Called by an RDD's `mapPartitionsWithIndex` over one empty partition per task (`task`: the
    executors write their parts, a part per slice, and only the reports come back), or by
    `mapInArrow` over `spark.range(len(tasks))`, a task id per partition, when Spark writes the
    output (`__call__`: the rows go back through the JVM).
    """

    scoring: Scoring
    slices: tuple[Slice, ...]
    columns: tuple[str, ...]
    text_columns: tuple[str, ...] = ()
    """Columns read as dictionaries (the levels): each distinct text is decoded and looked up once."""
    tasks: tuple[tuple[int, ...], ...] = ()
    """The slices of each task that `task` and `__call__` run (`group_slices`)."""

    def parts(self, indices: Iterable[int]) -> Iterator[dict[str, Any]]:
        return self.scoring.write_parts(self._pieces(indices))

    def task(self, index: int, rows: Iterator[Any]) -> Iterator[dict[str, Any]]:
        """Task `index` writes the parts of its slices (none past the last task), then reads its input, which is empty.

        The slices come from the partition's index, not from its rows: a worker's first task would
        otherwise wait for the JVM to send that empty input, about 40 ms after the task's command
        (RESULTS.md §24). PySpark expects the input read to its end before the task ends."""
        yield from self.parts(self.tasks[index] if index < len(self.tasks) else ())
        if any(True for _ in rows):
            raise RuntimeError(f"task {index} was given rows: its input must be empty")

    def __call__(self, tasks: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The rows of the tasks whose indices arrive (`spark.range(len(tasks))`), for Spark's writer."""
        indices = (s for batch in tasks for index in batch.column(0).to_pylist() for s in self.tasks[index])
        return self.scoring.rows_for_spark(self._pieces(indices))

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
