"""Names every stage uses: endpoint paths, artifact file names, the registered model."""

from __future__ import annotations

from pathlib import Path

PREDICT_PATH = "/predict"
BATCH_PATH = "/predict/batch"
HEALTH_PATH = "/health"
READY_PATH = "/ready"
METRICS_PATH = "/metrics"
EXAMPLE_PATH = "/example"

REGISTERED_MODEL_NAME = "credit-scoring"
DEFAULT_MODEL_URI = f"models:/{REGISTERED_MODEL_NAME}@champion"
"""The MLflow registry entry export reads by default: the version carrying the `champion` alias."""

ARTIFACT_NAME = "credit_scoring.onnx"
REFERENCE_NAME = "reference_sample.parquet"
MODELS_DIR = Path("models")
DEFAULT_MODEL_PATH = MODELS_DIR / ARTIFACT_NAME
DEFAULT_REFERENCE_PATH = MODELS_DIR / REFERENCE_NAME

DECISION_WORDS = ("accepted", "refused")
"""The decision in words, indexed by the prediction (0 = accepted, 1 = refused)."""
