"""Export the registered pipeline: convert, prove parity, then write the artifact and its companions."""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from mlflow.artifacts import download_artifacts

from contract.metadata import ModelMetadata
from contract.names import ARTIFACT_NAME, DEFAULT_MODEL_URI, REFERENCE_NAME
from contract.scorer import latency_session_options
from contract.spec import FeatureSpec
from export.convert import to_onnx
from export.parity import ParityError, ParityReport, compare, onnx_probabilities, records
from training.synthetic import generate
from training.train import FEATURE_SPEC_ARTIFACT, REFERENCE_ARTIFACT, default_tracking_uri

CARD_NAME = "MODEL_CARD.md"
PARITY_SEED = 20_261_126  # parity rows are drawn apart from any training seed
LIBRARIES = ("numpy", "scikit-learn", "lightgbm", "mlflow", "onnx", "onnxruntime", "skl2onnx", "onnxmltools")


@dataclass
class ExportResult:
    artifact: Path
    metadata: ModelMetadata
    parity: ParityReport
    sizes: dict[str, int]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def resolve_model(model_uri: str) -> tuple[str, str, str]:
    """(registered name, version, run id) of a models:/name@alias or models:/name/version URI."""
    if not model_uri.startswith("models:/"):
        raise ValueError(f"expected a registered model URI such as models:/credit-scoring@champion, got {model_uri}")
    client = mlflow.MlflowClient()
    name_part = model_uri.removeprefix("models:/")
    if "@" in name_part:
        name, alias = name_part.split("@", 1)
        mv = client.get_model_version_by_alias(name, alias)
    else:
        name, ver = name_part.rsplit("/", 1)
        mv = client.get_model_version(name, ver)
    return name, str(mv.version), str(mv.run_id)


def export_model(
    model_uri: str = DEFAULT_MODEL_URI,
    out_dir: Path = Path("models"),
    parity_rows: int = 100_000,
    tracking_uri: str | None = None,
) -> ExportResult:
    """Convert, verify and write. Raises ParityError (and writes nothing) when parity fails."""
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    name, model_version, run_id = resolve_model(model_uri)
    run = mlflow.get_run(run_id)
    threshold = float(run.data.metrics["threshold"])
    say(f"exporting {name} version {model_version} (run {run_id}), threshold {threshold:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        local_model = Path(download_artifacts(artifact_uri=f"models:/{name}/{model_version}", dst_path=tmp))
        spec = FeatureSpec.from_json(
            Path(download_artifacts(run_id=run_id, artifact_path=FEATURE_SPEC_ARTIFACT, dst_path=tmp)).read_text()
        )
        reference = pd.read_parquet(download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp))
        mlflow_dir_bytes = _directory_size(local_model)
        pipeline = mlflow.sklearn.load_model(str(local_model))
        pyfunc = mlflow.pyfunc.load_model(str(local_model))

    say("converting the pipeline to ONNX")
    model = to_onnx(pipeline)
    # The serving session's options, so reference scores are bit-for-bit those the API returns.
    session = ort.InferenceSession(
        model.SerializeToString(), latency_session_options(), providers=["CPUExecutionProvider"]
    )

    say(f"scoring {parity_rows:,} unseen synthetic rows with the MLflow model and with ONNX")
    parity_frame = generate(parity_rows, seed=PARITY_SEED)[spec.names]
    expected = np.asarray(pyfunc.predict(parity_frame))[:, 1]
    actual = onnx_probabilities(session, spec, records(parity_frame, spec))
    report = compare(expected, actual, threshold)
    say(report.describe())
    if not report.passed:
        raise ParityError(f"ONNX export refused, nothing written: {report.describe()}")

    metadata = ModelMetadata(
        model_name=name,
        model_version=model_version,
        mlflow_run_id=run_id,
        threshold=threshold,
        feature_spec=spec,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        metrics={k: float(v) for k, v in sorted(run.data.metrics.items())},
        library_versions={lib: version(lib) for lib in LIBRARIES},
        parity=report.as_dict(),
    )
    onnx.helper.set_model_props(model, metadata.to_onnx_map())
    model.producer_name, model.doc_string = "credit-scoring-api export", f"{name} v{model_version}"

    reference_scores = onnx_probabilities(session, spec, records(reference, spec))
    reference = reference.assign(
        probability=reference_scores, prediction=(reference_scores >= threshold).astype(np.int64)
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / ARTIFACT_NAME
    _write_atomically(artifact, model.SerializeToString())
    reference.to_parquet(out_dir / REFERENCE_NAME, index=False)
    sizes = {
        "onnx_bytes": artifact.stat().st_size,
        "pickle_bytes": len(pickle.dumps(pipeline)),
        "mlflow_model_dir_bytes": mlflow_dir_bytes,
    }
    (out_dir / CARD_NAME).write_text(model_card(metadata, report, sizes, len(reference)))
    say(
        f"wrote {artifact} ({sizes['onnx_bytes'] / 1e6:.2f} MB; pickled pipeline {sizes['pickle_bytes'] / 1e6:.2f} MB, "
        f"MLflow model directory {sizes['mlflow_model_dir_bytes'] / 1e6:.2f} MB), {out_dir / REFERENCE_NAME}, "
        f"{out_dir / CARD_NAME}"
    )
    return ExportResult(artifact, metadata, report, sizes)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def model_card(metadata: ModelMetadata, parity: ParityReport, sizes: dict[str, int], reference_rows: int) -> str:
    m = metadata.metrics
    lines = [
        f"# Model card: {metadata.model_name} v{metadata.model_version}",
        "",
        "LightGBM default-risk model for Crédit Express, exported from MLflow to ONNX by `python -m export`.",
        "This file is regenerated with the artifact; do not edit it by hand.",
        "",
        f"- MLflow run: `{metadata.mlflow_run_id}`; exported {metadata.created_at}",
        f"- Inputs: {len(metadata.feature_spec)} raw application fields "
        f"({len(metadata.feature_spec.categorical_names)} categorical), spec embedded in the ONNX metadata",
        f"- Decision: refuse (prediction 1) when the default probability is at least **{metadata.threshold:.4f}**, "
        "the threshold that minimises 10 x missed defaults + 1 x refused good clients on validation data",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    for key in (
        "auc_test",
        "oracle_auc_test",
        "auc_valid",
        "business_cost_test",
        "business_cost_test_at_0_5",
        "cost_per_applicant_test",
        "refusal_rate_test",
        "default_rate",
        "n_trees",
    ):
        if key in m:
            lines.append(f"| {key} | {m[key]:.4f} |" if m[key] % 1 else f"| {key} | {m[key]:.0f} |")
    lines += [
        "",
        f"Parity (ONNX vs MLflow model): {parity.describe()}.",
        "",
        f"Sizes: ONNX {sizes['onnx_bytes']:,} bytes; pickled scikit-learn pipeline {sizes['pickle_bytes']:,} bytes; "
        f"MLflow model directory {sizes['mlflow_model_dir_bytes']:,} bytes.",
        "",
        f"`{REFERENCE_NAME}`: {reference_rows:,} held-out rows with their ONNX scores, "
        "the reference for drift analysis.",
        "",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in metadata.library_versions.items()),
        "",
    ]
    return "\n".join(lines)
