"""Train the default-risk pipeline, choose the business threshold, log and register it in MLflow."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from contract.names import REGISTERED_MODEL_NAME
from contract.spec import FeatureSpec
from training import fairness
from training.data import load_application_csv, split
from training.pipeline import DEFAULT_LGBM_PARAMS, build_pipeline, build_preprocessing
from training.schema import DEFAULT_PROTECTED, ID_COLUMN, TARGET_COLUMN, build_feature_spec
from training.synthetic import TRUE_PROBABILITY_COLUMN, generate
from training.threshold import best_threshold, business_cost

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME = REGISTERED_MODEL_NAME
CHAMPION_ALIAS = "champion"
REFERENCE_ARTIFACT = "reference/reference_sample.parquet"
FEATURE_SPEC_ARTIFACT = "feature_spec.json"
FAIRNESS_ARTIFACT = "fairness.json"
TRAINING_DATA_ARTIFACT = "training_data.json"
# skops refuses to load types it was not told to trust; these are the pipeline's own.
SKOPS_TRUSTED_TYPES = [
    "training.pipeline.SpecEncoder",
    "training.pipeline.FeatureEngineer",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.basic.Booster",
    "collections.OrderedDict",
]


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else a local sqlite store under the project (git-ignored)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlruns' / 'mlflow.db'}"


@dataclass
class TrainConfig:
    data_path: Path | None = None  # a real application_train.csv; None = synthetic data
    n_rows: int = 307_511  # synthetic rows (the real file's size)
    seed: int = 42
    tracking_uri: str | None = None
    experiment: str = "credit-scoring"
    model_name: str = MODEL_NAME
    alias: str = CHAMPION_ALIAS
    """The registry alias the new version gets (`challenger`: trained for a shadow run, champion untouched)."""
    reference_rows: int = 5_000
    early_stopping_rounds: int = 100
    lgbm_params: dict[str, Any] = field(default_factory=dict)
    protected_attributes: tuple[str, ...] = DEFAULT_PROTECTED  # accepted fields that are never model inputs
    fairness_comparison: bool = True  # also train with them as inputs, to measure what leaving them out costs


@dataclass
class TrainResult:
    run_id: str
    model_version: str
    metrics: dict[str, float]
    pipeline: Pipeline
    fairness: dict[str, Any] = field(default_factory=dict)


def load_data(config: TrainConfig) -> tuple[pd.DataFrame, str, dict[str, Any]]:
    """The application table, a short source label, and its provenance (what the model is trained on)."""
    if config.data_path is not None:
        path = Path(config.data_path)
        logger.info(f"reading {path}")
        frame = load_application_csv(path)
        provenance: dict[str, Any] = {
            "kind": "file",
            "file": path.name,
            "sha256": file_sha256(path),
            "bytes": path.stat().st_size,
            "rows": len(frame),
        }
        return frame, f"real:{path.name}", provenance
    frame = generate(config.n_rows, seed=config.seed, progress=logger.info)
    provenance = {"kind": "synthetic", "generator": "training.synthetic.generate", "seed": config.seed}
    provenance["rows"] = config.n_rows
    return frame, f"synthetic:{config.n_rows}:seed{config.seed}", provenance


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in (ID_COLUMN, TARGET_COLUMN, TRUE_PROBABILITY_COLUMN) if c in frame])


@dataclass
class Fitted:
    """One pipeline fitted on the training split and scored on validation and test."""

    pipeline: Pipeline
    metrics: dict[str, float]
    p_test: np.ndarray


def fit_and_evaluate(
    spec: FeatureSpec,
    params: dict[str, Any],
    config: TrainConfig,
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    test_df: pd.DataFrame,
) -> Fitted:
    """Encode + engineer + LightGBM with early stopping, the business threshold, test metrics."""
    preprocessing = build_preprocessing(spec)
    x_train = preprocessing.fit_transform(_features(train_df))
    x_valid = preprocessing.transform(_features(valid_df))
    y_train, y_valid, y_test = (d[TARGET_COLUMN].to_numpy() for d in (train_df, valid_df, test_df))
    model = lgb.LGBMClassifier(**params)
    started = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        eval_X=(x_valid,),
        eval_y=(y_valid,),
        eval_metric="auc",
        callbacks=[lgb.early_stopping(config.early_stopping_rounds, verbose=False), lgb.log_evaluation(100)],
    )
    fit_seconds = time.perf_counter() - started
    pipeline = build_pipeline(preprocessing, model)
    n_trees = int(model.best_iteration_ or params["n_estimators"])
    logger.info(f"trained {n_trees} trees on {len(spec.model_inputs)} inputs in {fit_seconds:.1f} s")

    p_valid = pipeline.predict_proba(_features(valid_df))[:, 1]
    p_test = pipeline.predict_proba(_features(test_df))[:, 1]
    choice = best_threshold(y_valid, p_valid)
    metrics = {
        "auc_valid": float(roc_auc_score(y_valid, p_valid)),
        "auc_test": float(roc_auc_score(y_test, p_test)),
        "threshold": choice.threshold,
        "business_cost_valid": choice.cost,
        "business_cost_test": business_cost(y_test, p_test, choice.threshold),
        "business_cost_test_at_0_5": business_cost(y_test, p_test, 0.5),
        "cost_per_applicant_test": business_cost(y_test, p_test, choice.threshold) / len(y_test),
        "refusal_rate_test": float(np.mean(p_test >= choice.threshold)),
        "n_trees": float(n_trees),
        "fit_seconds": fit_seconds,
    }
    return Fitted(pipeline, metrics, p_test)


def train(config: TrainConfig) -> TrainResult:
    """Train, evaluate, report fairness, log to MLflow and register the model as `<name>@champion`."""
    trained_at = datetime.now(UTC).isoformat(timespec="seconds")
    frame, source, training_data = load_data(config)
    train_df, valid_df, test_df = split(frame, config.seed)
    logger.info(
        f"data {source}: train {len(train_df):,}, validation {len(valid_df):,}, test {len(test_df):,} rows, "
        f"default rate {frame[TARGET_COLUMN].mean():.2%}"
    )

    spec = build_feature_spec(config.protected_attributes)
    params = {**DEFAULT_LGBM_PARAMS, "random_state": config.seed, **config.lgbm_params}
    logger.info(
        f"training LightGBM (up to {params['n_estimators']} trees, early stopping after "
        f"{config.early_stopping_rounds} rounds without progress); never inputs: "
        f"{', '.join(spec.protected_names) or 'none'}"
    )
    served = fit_and_evaluate(spec, params, config, train_df, valid_df, test_df)
    pipeline, metrics = served.pipeline, served.metrics
    metrics["default_rate"] = float(frame[TARGET_COLUMN].mean())
    if TRUE_PROBABILITY_COLUMN in test_df:
        metrics["oracle_auc_test"] = float(roc_auc_score(test_df[TARGET_COLUMN], test_df[TRUE_PROBABILITY_COLUMN]))
    logger.info(
        "AUC test {auc_test:.4f} (oracle {o}), threshold {threshold:.4f}, cost on test {business_cost_test:.0f} "
        "(at 0.5: {business_cost_test_at_0_5:.0f}), refusal rate {refusal_rate_test:.1%}".format(
            o=f"{metrics['oracle_auc_test']:.4f}" if "oracle_auc_test" in metrics else "n/a", **metrics
        )
    )

    report = fairness_report(config, spec, params, served, train_df, valid_df, test_df)
    logger.info(f"fairness: {fairness.describe(report)}")
    training_data["trained_at"] = trained_at
    run_id, version = log_and_register(
        config, pipeline, spec, params, metrics, source, train_df, test_df, report, training_data
    )
    return TrainResult(run_id, version, metrics, pipeline, report)


def fairness_report(
    config: TrainConfig,
    spec: FeatureSpec,
    params: dict[str, Any],
    served: Fitted,
    train_df: pd.DataFrame,
    valid_df: pd.DataFrame,
    test_df: pd.DataFrame,
) -> dict[str, Any]:
    """Group outcomes of the served model on test, the cost of leaving the protected fields out, the proxy check."""
    y_test = test_df[TARGET_COLUMN].to_numpy()
    threshold = served.metrics["threshold"]
    report: dict[str, Any] = {
        "protected_attributes": spec.protected_names,
        "threshold": threshold,
        "test_rows": len(test_df),
        **fairness.outcomes_by_group(test_df, served.p_test >= threshold, y_test),
    }
    if spec.protected_names and config.fairness_comparison:
        logger.info(f"training the same pipeline with {', '.join(spec.protected_names)} as inputs, for comparison")
        with_protected = fit_and_evaluate(build_feature_spec(()), params, config, train_df, valid_df, test_df)
        compared = fairness.outcomes_by_group(
            test_df, with_protected.p_test >= with_protected.metrics["threshold"], y_test
        )
        keys = ("auc_test", "business_cost_test", "threshold", "refusal_rate_test")
        report["with_protected_as_inputs"] = {
            **{k: with_protected.metrics[k] for k in keys},
            **compared,
        }
        report["cost_of_dropping"] = fairness.cost_of_dropping(served.metrics, with_protected.metrics)
    if fairness.GENDER not in spec.input_names:
        encode = served.pipeline.steps[0][1]
        report["proxy"] = fairness.proxy_check(
            encode.transform(_features(train_df)),
            train_df[fairness.GENDER].fillna("missing").to_numpy(dtype=object),
            encode.transform(_features(test_df)),
            test_df[fairness.GENDER].fillna("missing").to_numpy(dtype=object),
            served.p_test,
            config.seed,
        )
    return report


def log_and_register(
    config: TrainConfig,
    pipeline: Pipeline,
    spec: FeatureSpec,
    params: dict[str, Any],
    metrics: dict[str, float],
    source: str,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    fairness_report: dict[str, Any],
    training_data: dict[str, Any],
) -> tuple[str, str]:
    uri = config.tracking_uri or default_tracking_uri()
    mlflow.set_tracking_uri(uri)
    location = None
    if uri.startswith("sqlite:///"):  # a local store keeps its artifacts beside the database
        store = Path(uri.removeprefix("sqlite:///")).parent
        store.mkdir(parents=True, exist_ok=True)
        location = (store / "artifacts").as_uri()
    if mlflow.get_experiment_by_name(config.experiment) is None:
        mlflow.create_experiment(config.experiment, artifact_location=location)
    mlflow.set_experiment(config.experiment)
    logger.info(f"logging to MLflow at {uri}")

    features = _features(train_df)
    example = features.head(5)
    with mlflow.start_run(run_name=f"lgbm-{source}") as run:
        mlflow.log_params(
            {
                **{f"lgbm_{k}": v for k, v in params.items()},
                "data_source": source,
                "train_rows": len(train_df),
                "seed": config.seed,
                "protected_attributes": ",".join(spec.protected_names) or "none",
                "training_data_sha256": training_data.get("sha256", "synthetic"),
            }
        )
        mlflow.log_metrics({**metrics, **fairness.flatten_for_mlflow(fairness_report)})
        mlflow.log_text(spec.to_json(), FEATURE_SPEC_ARTIFACT)
        mlflow.log_dict(fairness_report, FAIRNESS_ARTIFACT)
        mlflow.log_dict(training_data, TRAINING_DATA_ARTIFACT)
        reference = test_df.sample(min(config.reference_rows, len(test_df)), random_state=config.seed)
        reference = reference.drop(columns=[c for c in (ID_COLUMN, TRUE_PROBABILITY_COLUMN) if c in reference])
        with tempfile.TemporaryDirectory() as tmp:
            reference_file = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference.to_parquet(reference_file, index=False)
            mlflow.log_artifact(str(reference_file), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict_proba(example)),
            input_example=example,
            pyfunc_predict_fn="predict_proba",
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            code_paths=[str(PROJECT_ROOT / "training"), str(PROJECT_ROOT / "contract")],
            registered_model_name=config.model_name,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(config.model_name, config.alias, version)
        logger.info(f"registered {config.model_name} version {version} as @{config.alias} (run {run.info.run_id})")
        return run.info.run_id, version
