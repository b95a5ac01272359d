"""What runs on the executors: Arrow batches of applications in, scored rows and rejects out.

Each Python worker process opens the artifact once (the first batch it sees) and keeps the
onnxruntime session for every later task: Spark reuses its Python workers, so a session is
built once per process, not once per task or batch. The session options and thread counts
are the API's (`contract.scorer.Scorer` with its defaults: one thread, Spark's task slots are
the parallelism), so the probabilities are the API's to the last bit.

A task's batches arrive as `Piece`s (a batch, its rows' 1-based numbers in the input, the part
they belong to) from either reader (`batch.parquet_slices` or Spark's, `ScoreRows`); `Scoring.run`
scores them and either writes the task's part of both outputs itself (`batch.parts`, a one-row
report back to Spark) or, for outputs only Spark can write, yields the rows to Spark.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch.columns import BatchChecker, problems_as_records
from batch.parts import REJECTS, REPORT_SCHEMA, SCORED, PartWriter
from batch.reasons import REASONS, REASONS_TYPE, load_explainer, reasons_array
from contract.explain import Explainer
from contract.names import DECISION_WORDS

if TYPE_CHECKING:
    from contract.scorer import Scorer

ROW_ID_COLUMN = "__row_id"
"""Spark's monotonically_increasing_id: the partition index in the upper 31 bits, the position below."""
ROW_NUMBER = "row_number"
PROBABILITY = "probability"
PREDICTION = "prediction"
DECISION = "decision"
MODEL_VERSION = "model_version"
THRESHOLD = "threshold"
PROBLEMS = "problems"
_POSITION_BITS = 33

PROBLEMS_TYPE = pa.list_(pa.struct([("field", pa.string()), ("problem", pa.string())]))
_DECISIONS = pa.array(DECISION_WORDS, pa.string())


@dataclass
class ModelRuntime:
    """One process's scorer, the checker built from the same artifact's spec, and its explainer."""

    scorer: Scorer
    checker: BatchChecker
    explainer: Explainer | None = None


_RUNTIMES: dict[str, ModelRuntime] = {}


class ArtifactMismatch(RuntimeError):
    """The artifact an executor found is not the one the driver checked (replaced during the job?)."""


def runtime_for(path: str, reasons: bool = False, artifact_sha256: str = "") -> ModelRuntime:
    """The process-wide runtime for the artifact at `path`, loaded on first use (the explainer too).

    `artifact_sha256`: the export's digest of the artifact the driver loaded (its metadata);
    ArtifactMismatch when the one at `path` carries another (empty: not checked)."""
    runtime = _RUNTIMES.get(path)
    loaded = runtime is None or (reasons and runtime.explainer is None)
    if runtime is None:
        # Imported here, not above: onnxruntime starts a thread when imported, and this module is
        # imported before the fork by the job's daemon (`batch.daemon`), which must have none.
        from contract.scorer import Scorer

        scorer = Scorer(path)  # the API's defaults: one intra-op and one inter-op thread
        scorer.load()
        runtime = _RUNTIMES[path] = ModelRuntime(scorer, BatchChecker(scorer.metadata.feature_spec))
    if reasons and runtime.explainer is None:
        runtime.explainer = load_explainer(runtime.scorer.metadata)
    if loaded:
        # PySpark runs a full gc.collect() after each task of a reused worker: leave what lives as
        # long as the process (modules, the session, the explainer's tables) out of every one.
        gc.freeze()
    found = runtime.scorer.metadata.artifact_sha256
    if artifact_sha256 and found != artifact_sha256:
        raise ArtifactMismatch(
            f"{path} is not the artifact the driver loaded (artifact_sha256 {found[:12] or 'none'}, expected "
            f"{artifact_sha256[:12]}): was it replaced while the job ran?"
        )
    return runtime


@dataclass(frozen=True)
class Piece:
    """Input rows for one output part: the batch, each row's 1-based number in the input, the part."""

    batch: pa.RecordBatch
    row_numbers: np.ndarray
    part: int
    """0-based input position of the part's first row (names and orders the part's files)."""


@dataclass(frozen=True)
class Scoring:
    """How a task scores its pieces, and where the results go (pickled to the executors).

    `model_file` is the artifact's name in SparkFiles (or a path readable by every executor);
    `reasons` is how many reasons a refused row carries (0: no `reasons` column); `staging` is
    the folder the executors write their parts to (`batch.parts`), None when Spark writes;
    `artifact_sha256` is the driver's artifact's digest, which every executor's must match.
    """

    model_file: str
    id_column: str | None
    id_type: pa.DataType | None
    reasons: int = 0
    staging: str | None = None
    artifact_sha256: str = ""

    def locate(self) -> str:
        if Path(self.model_file).is_absolute():
            return self.model_file
        from pyspark import SparkFiles  # only on executors: the checker and scorer need no Spark

        return SparkFiles.get(self.model_file)

    def runtime(self) -> ModelRuntime:
        """This process's runtime for the job's artifact (ArtifactMismatch if it is not the driver's)."""
        return runtime_for(self.locate(), reasons=self.reasons > 0, artifact_sha256=self.artifact_sha256)

    def schemas(self) -> dict[str, pa.Schema]:
        """The scored and rejects outputs' columns (docs/CONTRACTS.md, "Portfolio scoring output")."""
        ids = [pa.field(self.id_column, self.id_type or pa.string())] if self.id_column else []
        scored = [
            *ids,
            pa.field(ROW_NUMBER, pa.int64()),
            pa.field(PROBABILITY, pa.float64()),
            pa.field(PREDICTION, pa.int32()),
            pa.field(DECISION, pa.string()),
            pa.field(MODEL_VERSION, pa.string()),
            pa.field(THRESHOLD, pa.float64()),
        ]
        if self.reasons:
            scored.append(pa.field(REASONS, REASONS_TYPE))
        rejects = [pa.field(ROW_NUMBER, pa.int64()), *ids, pa.field(PROBLEMS, PROBLEMS_TYPE)]
        return {SCORED: pa.schema(scored), REJECTS: pa.schema(rejects)}

    def dictionary_columns(self) -> dict[str, tuple[str, ...]]:
        """The columns with few distinct values, written with a Parquet dictionary."""
        scored = (PREDICTION, DECISION, MODEL_VERSION, THRESHOLD) + ((REASONS,) if self.reasons else ())
        return {SCORED: scored, REJECTS: (PROBLEMS,)}

    def rows_schema(self) -> pa.Schema:
        """The rows a task hands Spark's writer: the scored columns and `problems` (set for a reject)."""
        schemas = self.schemas()
        return pa.schema([*schemas[SCORED], schemas[REJECTS].field(PROBLEMS)])

    def rows_for_spark(self, pieces: Iterator[Piece]) -> Iterator[pa.RecordBatch]:
        """Score the pieces and yield every row, for an output only Spark can write."""
        runtime = self.runtime()
        schemas, rows = self.schemas(), self.rows_schema()
        for piece in pieces:
            for out in self.score(runtime, schemas, piece.batch, piece.row_numbers):
                if out is not None:
                    yield _widen(out, rows)

    def write_parts(self, pieces: Iterator[Piece]) -> Iterator[dict[str, Any]]:
        """Score the pieces, write each part of both outputs (`batch.parts`), yield one report per part."""
        if self.staging is None:
            raise RuntimeError("write_parts needs a staging folder")
        runtime = self.runtime()
        schemas = self.schemas()
        writer: PartWriter | None = None
        for piece in pieces:
            if writer is not None and writer.part != piece.part:
                yield writer.close()
                writer = None
            if writer is None:
                writer = PartWriter(self.staging, piece.part, schemas, self.dictionary_columns())
            scored, rejects = self.score(runtime, schemas, piece.batch, piece.row_numbers)
            writer.write(SCORED, scored)
            writer.write(REJECTS, rejects)
        if writer is not None:
            yield writer.close()

    def score(
        self, runtime: ModelRuntime, schemas: dict[str, pa.Schema], batch: pa.RecordBatch, row_numbers: np.ndarray
    ) -> tuple[pa.RecordBatch | None, pa.RecordBatch | None]:
        """One batch of applications (and their 1-based input row numbers) -> its scored rows, its rejects."""
        checked = runtime.checker.check(batch)
        ids = batch.column(self.id_column) if self.id_column else None
        scored = rejects = None
        count = checked.rows.shape[0]
        if count:
            if self.reasons:
                probabilities, attributions = runtime.scorer.predict_attributed(checked.rows)
            else:  # the graph attributes no row: a batch costs what the scoring trees cost
                probabilities, attributions = probabilities_in_calls(runtime.scorer, checked.rows), None
            predictions = runtime.scorer.decide_many(probabilities)
            metadata = runtime.scorer.metadata
            columns = [] if ids is None else [ids.filter(pa.array(checked.valid)).cast(schemas[SCORED][0].type)]
            columns += [
                pa.array(row_numbers[checked.valid], pa.int64()),
                pa.array(probabilities.astype(np.float64), pa.float64()),  # the float the API's JSON carries
                pa.array(predictions, pa.int32()),
                pc.take(_DECISIONS, predictions),
                pa.repeat(pa.scalar(metadata.model_version, pa.string()), count),
                pa.repeat(pa.scalar(metadata.threshold, pa.float64()), count),
            ]
            if self.reasons:
                assert runtime.explainer is not None  # runtime_for(reasons=True) loaded it
                columns.append(reasons_array(runtime.explainer, checked.rows, predictions, self.reasons, attributions))
            scored = pa.RecordBatch.from_arrays(columns, schema=schemas[SCORED])
        if checked.rejects:
            indices = pa.array([index for index, _ in checked.rejects], pa.int64())
            columns = [pa.array(row_numbers[indices.to_numpy()], pa.int64())]
            if ids is not None:
                columns.append(ids.take(indices).cast(schemas[REJECTS][1].type))
            columns.append(pa.array([problems_as_records(p) for _, p in checked.rejects], PROBLEMS_TYPE))
            rejects = pa.RecordBatch.from_arrays(columns, schema=schemas[REJECTS])
        return scored, rejects


MODEL_CALL_ROWS = 1_000
"""Rows per onnxruntime call: the trees walk 1,000 rows' inputs (480 KB) within a core's L2 cache,
and a whole 10,000-row batch (4.8 MB) from memory: about 0.27 µs a row less (RESULTS.md §22)."""


def probabilities_in_calls(scorer: Scorer, rows: np.ndarray) -> np.ndarray:
    """`scorer.predict_proba` of a batch, MODEL_CALL_ROWS rows at a time (each row's score is the same)."""
    if len(rows) <= MODEL_CALL_ROWS:
        return scorer.predict_proba(rows)
    return np.concatenate(
        [scorer.predict_proba(rows[start : start + MODEL_CALL_ROWS]) for start in range(0, len(rows), MODEL_CALL_ROWS)]
    )


@dataclass(frozen=True)
class ScoreRows:
    """The function given to `DataFrame.mapInArrow` over rows Spark read (CSV, remote Parquet).

    `partition_offsets[p]` is how many input rows come before partition p, which turns Spark's
    row ids into 1-based row numbers of the input; a partition's rows make one output part.
    With `scoring.staging` the task writes its part and yields its report, else its rows.
    """

    scoring: Scoring
    partition_offsets: tuple[int, ...]

    def output_schema(self) -> pa.Schema:
        return REPORT_SCHEMA if self.scoring.staging is not None else self.scoring.rows_schema()

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        if self.scoring.staging is None:
            yield from self.scoring.rows_for_spark(self._pieces(batches))
            return
        for report in self.scoring.write_parts(self._pieces(batches)):
            yield pa.RecordBatch.from_pylist([report], REPORT_SCHEMA)

    def _pieces(self, batches: Iterator[pa.RecordBatch]) -> Iterator[Piece]:
        offsets = np.asarray(self.partition_offsets, dtype=np.int64)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            row_ids = batch.column(ROW_ID_COLUMN).to_numpy()
            first = offsets[row_ids >> _POSITION_BITS]
            row_numbers = first + (row_ids & ((1 << _POSITION_BITS) - 1)) + 1
            yield Piece(batch, row_numbers, int(first[0]))


def _widen(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A scored or rejects batch in the schema of both (the other output's columns null)."""
    names = set(batch.schema.names)
    columns = [
        batch.column(field.name) if field.name in names else pa.nulls(batch.num_rows, field.type) for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
