"""Output parts written by the executors themselves, committed by the driver.

Sending the scored rows back through Spark costs a JVM conversion of every row, a cache (the
rows feed two outputs) and two Parquet writes (benchmarks/RESULTS.md §11). When the output is a
local path (or a folder every node mounts), each task writes its parts of both outputs (one
per slice of the input, or per Spark partition) with pyarrow and hands Spark a one-row report per
part instead; only the reports travel through the JVM.

The commit is the one a Hadoop output committer makes, without the JVM:
- a task attempt writes `DIR/_staging-<job>/{scored,rejects}/part-<first row>-<attempt>.parquet`,
  a name no other attempt (a retry, a speculative copy) uses, and reports it;
- Spark keeps the reports of one successful attempt per task; the driver moves exactly those
  files to `DIR/scored/part-<first row>.parquet` (and rejects/), in input order by name, then
  deletes the staging folder with whatever failed attempts left, then writes `_SUCCESS`;
- a job that fails leaves no part in DIR/scored or DIR/rejects (the staging folder is removed).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCORED, REJECTS = "scored", "rejects"
OUTPUTS = (SCORED, REJECTS)
SUCCESS_MARKER = "_SUCCESS"
REPORT_SCHEMA = pa.schema(
    [
        ("part", pa.int64()),
        ("scored_file", pa.string()),
        ("scored_rows", pa.int64()),
        ("rejects_file", pa.string()),
        ("rejects_rows", pa.int64()),
    ]
)


def part_name(part: int) -> str:
    """`part` is the 0-based input position of the part's first row: names sort in input order."""
    return f"part-{part:012d}"


def new_staging(output: str) -> str:
    return str(Path(output) / f"_staging-{uuid.uuid4().hex}")


class PartWriter:
    """One part of both outputs, written by one task attempt; files open on their first rows."""

    def __init__(
        self,
        staging: str,
        part: int,
        schemas: Mapping[str, pa.Schema],
        dictionary_columns: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`dictionary_columns`: per output, the columns worth a Parquet dictionary (few distinct
        values); encoding is not even tried for the others (scores, ids), which is most of the cost."""
        self.part = part
        self._dictionary = dictionary_columns or {}
        attempt = uuid.uuid4().hex
        self._paths = {kind: f"{staging}/{kind}/{part_name(part)}-{attempt}.parquet" for kind in OUTPUTS}
        self._schemas = schemas
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows = dict.fromkeys(OUTPUTS, 0)

    def write(self, kind: str, batch: pa.RecordBatch | None) -> None:
        if batch is None or batch.num_rows == 0:
            return
        writer = self._writers.get(kind)
        if writer is None:
            os.makedirs(os.path.dirname(self._paths[kind]), exist_ok=True)
            schema = self._schemas[kind]
            listed = self._dictionary.get(kind, ())
            dictionary = [leaf for name in listed for leaf in _leaves(name, schema.field(name).type)] or False
            writer = pq.ParquetWriter(self._paths[kind], self._schemas[kind], use_dictionary=dictionary)
            self._writers[kind] = writer
        writer.write_batch(batch)
        self._rows[kind] += batch.num_rows

    def close(self) -> dict[str, Any]:
        """Close the files; the report Spark carries back to the driver (REPORT_SCHEMA's fields)."""
        for writer in self._writers.values():
            writer.close()
        files = {kind: self._paths[kind] if kind in self._writers else None for kind in OUTPUTS}
        return {
            "part": self.part,
            "scored_file": files[SCORED],
            "scored_rows": self._rows[SCORED],
            "rejects_file": files[REJECTS],
            "rejects_rows": self._rows[REJECTS],
        }


def _leaves(path: str, kind: pa.DataType, nested: bool = False) -> Iterator[str]:
    """A column's Parquet leaf paths (what `use_dictionary` names); numbers inside a nested column are left out."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        yield from _leaves(f"{path}.list.element", kind.value_type, nested=True)
    elif pa.types.is_struct(kind):
        for child in kind:
            yield from _leaves(f"{path}.{child.name}", child.type, nested=True)
    elif not (nested and pa.types.is_floating(kind)):
        yield path


@dataclass(frozen=True)
class Committed:
    scored: int
    rejected: int


def commit(
    output: str, staging: str, reports: Iterable[Mapping[str, Any]], schemas: Mapping[str, pa.Schema]
) -> Committed:
    """Move the reported parts to DIR/scored and DIR/rejects (replacing them), drop the staging folder."""
    by_part: dict[int, Mapping[str, Any]] = {}
    for report in reports:
        if report["part"] in by_part:  # Spark keeps one attempt per task: two would be a bug, never a guess
            raise RuntimeError(f"two reports for part {report['part']}")
        by_part[report["part"]] = report
    for kind in OUTPUTS:
        target = Path(output) / kind
        if target.exists():  # only with --overwrite (checked before the job started)
            shutil.rmtree(target)
        target.mkdir(parents=True)
        moved = 0
        for part in sorted(by_part):
            staged = by_part[part][f"{kind}_file"]
            if staged is not None:
                os.replace(staged, target / f"{part_name(part)}.parquet")
                moved += 1
        if not moved:  # an output with no rows still has its schema
            pq.write_table(schemas[kind].empty_table(), target / f"{part_name(0)}.parquet")
        (target / SUCCESS_MARKER).write_text("")
    shutil.rmtree(staging, ignore_errors=True)
    return Committed(
        scored=sum(int(r["scored_rows"]) for r in by_part.values()),
        rejected=sum(int(r["rejects_rows"]) for r in by_part.values()),
    )


def abandon(staging: str) -> None:
    """A failed job: its staged parts go, DIR/scored and DIR/rejects stay as they were."""
    shutil.rmtree(staging, ignore_errors=True)
