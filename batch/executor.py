"""What runs on the executors: Arrow batches of applications in, scores and rejects out.

Each Python worker process opens the artifact once (the first batch it sees) and keeps the
onnxruntime session for every later task: Spark reuses its Python workers, so a session is
built once per process, not once per task or batch. The session options and thread counts
are the API's (`contract.scorer.Scorer` with its defaults), so the probabilities are the
API's to the last bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from batch.columns import BatchChecker, problems_as_records
from contract.names import DECISION_WORDS
from contract.requests import build_request_models
from contract.scorer import Scorer

ROW_ID_COLUMN = "__row_id"
"""Spark's monotonically_increasing_id: the partition index in the upper 31 bits, the position below."""
ROW_NUMBER = "row_number"
PROBABILITY = "probability"
PREDICTION = "prediction"
DECISION = "decision"
PROBLEMS = "problems"
_POSITION_BITS = 33

PROBLEMS_TYPE = pa.list_(pa.struct([("field", pa.string()), ("problem", pa.string())]))


@dataclass(frozen=True)
class ModelRuntime:
    """One process's scorer and the checker built from the same artifact's spec."""

    scorer: Scorer
    checker: BatchChecker


_RUNTIMES: dict[str, ModelRuntime] = {}


def runtime_for(path: str) -> ModelRuntime:
    """The process-wide runtime for the artifact at `path`, loaded on first use."""
    runtime = _RUNTIMES.get(path)
    if runtime is None:
        scorer = Scorer(path)  # the API's defaults: one intra-op and one inter-op thread
        scorer.load()
        spec = scorer.metadata.feature_spec
        # The batch size limit is the API's transport limit; one row is validated at a time here.
        checker = BatchChecker(spec, build_request_models(spec, max_batch_size=1))
        runtime = _RUNTIMES[path] = ModelRuntime(scorer, checker)
    return runtime


@dataclass(frozen=True)
class ScoreBatches:
    """The function given to `DataFrame.mapInArrow` (pickled to the executors).

    `model_file` is the artifact's name in SparkFiles (or a path readable by every executor);
    `partition_offsets[p]` is how many input rows come before partition p, which turns Spark's
    row ids into 1-based row numbers of the input.
    """

    model_file: str
    id_column: str | None
    id_type: pa.DataType | None
    partition_offsets: tuple[int, ...]

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        runtime = runtime_for(self.locate())
        offsets = np.asarray(self.partition_offsets, dtype=np.int64)
        schema = self.schema()
        for batch in batches:
            row_ids = batch.column(ROW_ID_COLUMN).to_numpy()
            row_numbers = offsets[row_ids >> _POSITION_BITS] + (row_ids & ((1 << _POSITION_BITS) - 1)) + 1
            yield from self.score(runtime, schema, batch, row_numbers)

    def locate(self) -> str:
        return _locate(self.model_file)

    def schema(self) -> pa.Schema:
        return output_schema(self.id_column, self.id_type)

    def score(
        self, runtime: ModelRuntime, schema: pa.Schema, batch: pa.RecordBatch, row_numbers: np.ndarray
    ) -> Iterator[pa.RecordBatch]:
        """One batch of applications (and their 1-based input row numbers) -> scored and rejected rows."""
        checked = runtime.checker.check(batch)
        ids = batch.column(self.id_column) if self.id_column else None
        if checked.rows.shape[0]:
            probabilities: list[float] = runtime.scorer.predict_proba(checked.rows).tolist()
            predictions = runtime.scorer.decide(probabilities)
            columns: dict[str, pa.Array] = {ROW_NUMBER: pa.array(row_numbers[checked.valid], pa.int64())}
            if ids is not None:
                columns[self.id_column or ""] = ids.filter(pa.array(checked.valid)).cast(schema.field(1).type)
            columns |= {
                PROBABILITY: pa.array(probabilities, pa.float64()),
                PREDICTION: pa.array(predictions, pa.int32()),
                DECISION: pa.array([DECISION_WORDS[p] for p in predictions], pa.string()),
                PROBLEMS: pa.nulls(len(probabilities), PROBLEMS_TYPE),
            }
            yield pa.RecordBatch.from_pydict(columns, schema=schema)
        if checked.rejects:
            indices = [index for index, _ in checked.rejects]
            count = len(indices)
            columns = {ROW_NUMBER: pa.array(row_numbers[indices], pa.int64())}
            if ids is not None:
                columns[self.id_column or ""] = ids.take(pa.array(indices)).cast(schema.field(1).type)
            columns |= {
                PROBABILITY: pa.nulls(count, pa.float64()),
                PREDICTION: pa.nulls(count, pa.int32()),
                DECISION: pa.nulls(count, pa.string()),
                PROBLEMS: pa.array([problems_as_records(p) for _, p in checked.rejects], PROBLEMS_TYPE),
            }
            yield pa.RecordBatch.from_pydict(columns, schema=schema)


def output_schema(id_column: str | None, id_type: pa.DataType | None) -> pa.Schema:
    """What every executor batch holds: scored rows have `problems` null, rejects the rest null."""
    fields = [pa.field(ROW_NUMBER, pa.int64())]
    if id_column is not None:
        fields.append(pa.field(id_column, id_type or pa.string()))
    fields += [
        pa.field(PROBABILITY, pa.float64()),
        pa.field(PREDICTION, pa.int32()),
        pa.field(DECISION, pa.string()),
        pa.field(PROBLEMS, PROBLEMS_TYPE),
    ]
    return pa.schema(fields)


def _locate(model_file: str) -> str:
    if Path(model_file).is_absolute():
        return model_file
    from pyspark import SparkFiles  # only on executors: the checker and scorer need no Spark

    return SparkFiles.get(model_file)
