"""Which model the benchmarks measure, and the held-out rows they measure it on.

Every benchmark compares paths over *one* model: the MLflow registered model, its scikit-learn
pipeline, its LightGBM booster and the ONNX artifact exported from it. `resolve()` returns:

- the project's own model when `make model` has run here: the champion of the local MLflow
  store (`mlruns/mlflow.db`) whose run id matches `models/credit_scoring.onnx`'s metadata;
- otherwise (a fresh clone, e.g. CI, where `mlruns/` is not versioned) a *quick* model trained
  and exported into a temporary store: same code, fewer rows and trees. Its timings are a smoke
  test, not the numbers in RESULTS.md.

`BENCH_MODEL=quick` forces the quick model; `BENCH_MODEL=project` refuses to fall back.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
MODEL_URI = "models:/credit-scoring@champion"
PROJECT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"
PROJECT_ARTIFACT = PROJECT_ROOT / "models" / "credit_scoring.onnx"
REFERENCE_NAME = "reference_sample.parquet"

# The quick model: small enough to train and export in ~15 s on two cores.
QUICK_ROWS = 20_000
QUICK_TREES = 60


@dataclass(frozen=True)
class BenchModel:
    """One model, reachable by every path the benchmarks compare."""

    kind: str  # "project" or "quick"
    tracking_uri: str
    model_uri: str
    artifact: Path  # the ONNX file exported from `model_uri`
    run_id: str
    model_version: str

    @property
    def reference_path(self) -> Path:
        return self.artifact.parent / REFERENCE_NAME

    def describe(self) -> str:
        return f"{self.kind} model {self.model_uri} v{self.model_version} (run {self.run_id[:8]}), {self.artifact}"


def artifact_run_id(artifact: Path) -> str:
    import onnx

    model = onnx.load(str(artifact), load_external_data=False)
    return next(p.value for p in model.metadata_props if p.key == "mlflow_run_id")


def project_model() -> BenchModel | None:
    """The project's champion and artifact, if both exist and are the same model."""
    db = PROJECT_ROOT / "mlruns" / "mlflow.db"
    if not db.is_file() or not PROJECT_ARTIFACT.is_file():
        return None
    import mlflow

    mlflow.set_tracking_uri(PROJECT_TRACKING_URI)
    try:
        version = mlflow.MlflowClient().get_model_version_by_alias("credit-scoring", "champion")
    except Exception:  # no registered model, no alias, an empty store
        return None
    if artifact_run_id(PROJECT_ARTIFACT) != version.run_id:
        print(
            f"benchmarks: {PROJECT_ARTIFACT} was not exported from the champion (run {version.run_id}); "
            "run `make export`",
            file=sys.stderr,
        )
        return None
    return BenchModel(
        "project", PROJECT_TRACKING_URI, MODEL_URI, PROJECT_ARTIFACT, version.run_id, str(version.version)
    )


def quick_model(root: Path) -> BenchModel:
    """Train, register and export a small model under `root` (a temporary directory)."""
    from export.run import export_model
    from training.train import TrainConfig, train

    uri = f"sqlite:///{root / 'mlflow.db'}"
    config = TrainConfig(
        n_rows=QUICK_ROWS,
        seed=7,
        tracking_uri=uri,
        reference_rows=1_000,
        early_stopping_rounds=20,
        lgbm_params={"n_estimators": QUICK_TREES},
    )
    result = train(config)
    exported = export_model(MODEL_URI, root / "models", parity_rows=2_000, tracking_uri=uri)
    return BenchModel("quick", uri, MODEL_URI, exported.artifact, result.run_id, result.model_version)


def resolve(tmp_root: Path) -> BenchModel:
    wanted = os.environ.get("BENCH_MODEL", "auto")
    if wanted not in ("auto", "project", "quick"):
        raise ValueError(f"BENCH_MODEL must be auto, project or quick, not {wanted!r}")
    if wanted != "quick":
        found = project_model()
        if found is not None:
            return found
        if wanted == "project":
            raise RuntimeError(
                "BENCH_MODEL=project but there is no champion matching models/credit_scoring.onnx: run `make model`"
            )
    return quick_model(tmp_root)


def held_out_rows(model: BenchModel, n: int) -> pd.DataFrame:
    """The first `n` rows of the model's reference sample (test-split rows the model never saw)."""
    frame = pd.read_parquet(model.reference_path)
    if len(frame) < n:
        raise ValueError(f"{model.reference_path} has {len(frame)} rows, {n} needed")
    return frame.head(n).reset_index(drop=True)
