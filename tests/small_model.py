"""A small real model: trained on synthetic rows, registered in a temporary MLflow store, exported.

The `trained` fixture (conftest.py) builds it once per session for the model tests
(tests/training/test_training_export.py, tests/contract/test_explain.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import export.run as export_run
from training.train import CHAMPION_ALIAS, MODEL_NAME, TrainConfig, TrainResult, train

MODEL_URI = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"


@dataclass
class Trained:
    result: TrainResult
    tracking_uri: str
    models_dir: Path
    export: export_run.ExportResult


def train_and_export(root: Path) -> Trained:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = TrainConfig(
        n_rows=12_000,
        seed=1,
        tracking_uri=uri,
        reference_rows=500,
        early_stopping_rounds=20,
        lgbm_params={"n_estimators": 80},
    )
    result = train(config)
    models_dir = root / "models"
    exported = export_run.export_model(MODEL_URI, models_dir, parity_rows=5_000, tracking_uri=uri)
    return Trained(result, uri, models_dir, exported)
