"""The executors' scoring call: a batch scored in several onnxruntime calls scores each row as the API does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from batch.columns import BatchChecker
from batch.executor import MODEL_CALL_ROWS, ArtifactMismatch, Scoring, probabilities_in_calls
from contract.scorer import Scorer
from training.synthetic import generate


def test_a_batch_split_into_model_calls_scores_each_row_as_one_row_alone(model_path: Path) -> None:
    scorer = Scorer(model_path)
    scorer.load()
    frame = generate(2 * MODEL_CALL_ROWS + 345, seed=21)
    batch = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    rows = BatchChecker(scorer.metadata.feature_spec).check(batch).rows
    assert len(rows) > 2 * MODEL_CALL_ROWS  # three calls, the last one short
    in_calls = probabilities_in_calls(scorer, rows)
    alone = np.concatenate([scorer.predict_proba(rows[i : i + 1]) for i in range(len(rows))])  # POST /predict's call
    assert in_calls.shape == (len(rows),)
    assert in_calls.tobytes() == alone.tobytes()


def test_an_executor_scores_only_with_the_artifact_the_driver_loaded(model_path: Path) -> None:
    scorer = Scorer(model_path)
    scorer.load()
    digest = scorer.metadata.artifact_sha256
    assert len(digest) == 64  # export always writes it
    same = Scoring(str(model_path), None, None, artifact_sha256=digest)
    assert same.runtime().scorer.metadata.artifact_sha256 == digest
    other = Scoring(str(model_path), None, None, artifact_sha256="0" * 64)
    with pytest.raises(ArtifactMismatch, match=r"is not the artifact the driver loaded .*replaced while the job ran"):
        other.runtime()
