"""Export the registered pipeline: convert, prove parity, then write the artifact and its companions."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import tempfile
import warnings
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from contract.encoding import RowEncoder
from contract.explain import Explainer
from contract.groups import group_order
from contract.metadata import ARTIFACT_SHA256_KEY, ModelMetadata
from contract.names import DEFAULT_MODEL_URI, REFERENCE_NAME
from contract.scorer import latency_session_options
from contract.spec import FeatureSpec
from export.convert import to_onnx
from export.explanation import ExplanationError, ExplanationReport, prove
from export.lifecycle import CHAMPION, ArtifactNames, artifact_names
from export.parity import ParityError, ParityReport, compare, onnx_probabilities, records
from export.shap_graph import add_attributions
from export.treeshap import explainer_payload
from training.synthetic import generate
from training.train import (
    FAIRNESS_ARTIFACT,
    FEATURE_SPEC_ARTIFACT,
    REFERENCE_ARTIFACT,
    TRAINING_DATA_ARTIFACT,
    default_tracking_uri,
)

logger = logging.getLogger(__name__)

CARD_NAME = "MODEL_CARD.md"
PARITY_SEED = 20_261_126  # parity rows are drawn apart from any training seed
LIBRARIES = ("numpy", "scikit-learn", "lightgbm", "mlflow", "onnx", "onnxruntime", "skl2onnx", "onnxmltools")


@dataclass
class ExportResult:
    artifact: Path
    metadata: ModelMetadata
    parity: ParityReport
    explanation: ExplanationReport
    sizes: dict[str, int]


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


def typical_examples(
    applicants: list[dict[str, Any]], probabilities: np.ndarray, threshold: float
) -> dict[str, dict[str, Any]]:
    """A typical accepted and a typical refused applicant of the unseen rows: the one at the median
    probability of each decision, for the docs and GET /example."""
    chosen: dict[str, dict[str, Any]] = {}
    for name, mask in (("accepted", probabilities < threshold), ("refused", probabilities >= threshold)):
        indices = np.flatnonzero(mask)
        if len(indices):
            median = np.median(probabilities[indices])
            chosen[name] = applicants[int(indices[np.argmin(np.abs(probabilities[indices] - median))])]
    return chosen


def export_model(
    model_uri: str = DEFAULT_MODEL_URI,
    out_dir: Path = Path("models"),
    parity_rows: int = 100_000,
    tracking_uri: str | None = None,
    names: ArtifactNames | None = None,
) -> ExportResult:
    """Convert, verify and write. Raises ParityError or ExplanationError (and writes nothing) when a proof fails.

    `names`: the files written (default: the champion's, models/credit_scoring.onnx and companions)."""
    names = names or artifact_names(CHAMPION)
    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    name, model_version, run_id = resolve_model(model_uri)
    run = mlflow.get_run(run_id)
    threshold = float(run.data.metrics["threshold"])
    logger.info(f"exporting {name} version {model_version} (run {run_id}), threshold {threshold:.4f}")

    with tempfile.TemporaryDirectory() as tmp:
        local_model = Path(download_artifacts(artifact_uri=f"models:/{name}/{model_version}", dst_path=tmp))
        spec = FeatureSpec.from_json(
            Path(download_artifacts(run_id=run_id, artifact_path=FEATURE_SPEC_ARTIFACT, dst_path=tmp)).read_text()
        )
        reference = pd.read_parquet(download_artifacts(run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp))
        fairness = _optional_json(run_id, FAIRNESS_ARTIFACT, tmp)
        training_data = _optional_json(run_id, TRAINING_DATA_ARTIFACT, tmp)
        mlflow_dir_bytes = _directory_size(local_model)
        pipeline = mlflow.sklearn.load_model(str(local_model))
        pyfunc = mlflow.pyfunc.load_model(str(local_model))

    logger.info("converting the pipeline to ONNX")
    model = to_onnx(pipeline)
    # The serving session's options, so reference scores are bit-for-bit those the API returns.
    session = ort.InferenceSession(
        model.SerializeToString(), latency_session_options(), providers=["CPUExecutionProvider"]
    )

    logger.info(f"scoring {parity_rows:,} unseen synthetic rows with the MLflow model and with ONNX")
    parity_frame = generate(parity_rows, seed=PARITY_SEED)[spec.names]
    parity_records = records(parity_frame, spec)
    expected = np.asarray(pyfunc.predict(parity_frame))[:, 1]
    actual = onnx_probabilities(session, spec, parity_records)
    report = compare(expected, actual, threshold)
    logger.info(report.describe())
    if not report.passed:
        raise ParityError(f"ONNX export refused, nothing written: {report.describe()}")

    logger.info("tabulating TreeSHAP of the served trees and proving it against LightGBM's pred_contrib")
    features = pipeline[:-1].transform(parity_frame)  # the training pipeline's own model features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column has no median
        typical = np.nan_to_num(np.nanmedian(features.astype(np.float64), axis=0))
    engineering = pipeline.named_steps["engineer"].engineering
    lgbm = pipeline.named_steps["model"]
    payload = explainer_payload(lgbm, engineering, typical)
    explainer = Explainer(payload, spec)
    add_attributions(model, explainer, threshold)  # the reasons' TreeSHAP runs in the scoring run itself
    session = ort.InferenceSession(
        model.SerializeToString(), latency_session_options(), providers=["CPUExecutionProvider"]
    )
    rows = RowEncoder(spec).encode_many(parity_records)
    explanation = prove(session, explainer.base_value, lgbm, rows, features, threshold)
    logger.info(explanation.describe())
    if not explanation.passed:
        raise ExplanationError(f"ONNX export refused, nothing written: {explanation.describe()}")

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
        training_data=training_data,
        fairness=fairness,
        explainer=payload,
        explanation_proof=explanation.as_dict(),
        examples=typical_examples(parity_records, actual, threshold),
    )
    onnx.helper.set_model_props(model, metadata.to_onnx_map())
    model.producer_name, model.doc_string = "credit-scoring-api export", f"{name} v{model_version}"
    metadata = replace(metadata, artifact_sha256=artifact_sha256(model))
    model.metadata_props.add(key=ARTIFACT_SHA256_KEY, value=metadata.artifact_sha256)

    reference_scores = onnx_probabilities(session, spec, records(reference, spec))
    reference = reference.assign(
        probability=reference_scores, prediction=(reference_scores >= threshold).astype(np.int64)
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = out_dir / names.artifact
    _write_atomically(artifact, model.SerializeToString())
    reference.to_parquet(out_dir / names.reference, index=False)
    sizes = {
        "onnx_bytes": artifact.stat().st_size,
        "pickle_bytes": len(pickle.dumps(pipeline)),
        "mlflow_model_dir_bytes": mlflow_dir_bytes,
    }
    (out_dir / names.card).write_text(model_card(metadata, report, explanation, sizes, len(reference)))
    logger.info(
        f"wrote {artifact} ({sizes['onnx_bytes'] / 1e6:.2f} MB; pickled pipeline {sizes['pickle_bytes'] / 1e6:.2f} MB, "
        f"MLflow model directory {sizes['mlflow_model_dir_bytes'] / 1e6:.2f} MB), {out_dir / names.reference}, "
        f"{out_dir / names.card}"
    )
    return ExportResult(artifact, metadata, report, explanation, sizes)


def artifact_sha256(model: onnx.ModelProto) -> str:
    """The artifact's identity: SHA-256 of its serialisation without the `artifact_sha256` key.

    Registry versions restart at 1 in every MLflow store; this cannot collide or go backwards
    to another artifact. `verify_artifact_sha256` recomputes it from the written file.
    """
    unsigned = onnx.ModelProto()
    unsigned.CopyFrom(model)
    kept = [p for p in unsigned.metadata_props if p.key != ARTIFACT_SHA256_KEY]
    del unsigned.metadata_props[:]
    unsigned.metadata_props.extend(kept)
    return hashlib.sha256(unsigned.SerializeToString()).hexdigest()


def verify_artifact_sha256(path: Path) -> bool:
    """Whether the file's recorded identity matches its content."""
    model = onnx.load(str(path))
    recorded = {p.key: p.value for p in model.metadata_props}.get(ARTIFACT_SHA256_KEY)
    return recorded is not None and recorded == artifact_sha256(model)


def _optional_json(run_id: str, artifact_path: str, tmp: str) -> dict:
    """A JSON artifact of the run, or {} for runs logged before it existed."""
    try:
        return dict(
            json.loads(Path(download_artifacts(run_id=run_id, artifact_path=artifact_path, dst_path=tmp)).read_text())
        )
    except (MlflowException, OSError):
        return {}


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def model_card(
    metadata: ModelMetadata,
    parity: ParityReport,
    explanation: ExplanationReport,
    sizes: dict[str, int],
    reference_rows: int,
) -> str:
    m = metadata.metrics
    spec = metadata.feature_spec
    lines = [
        f"# Model card: {metadata.model_name} v{metadata.model_version}",
        "",
        "LightGBM default-risk model for Crédit Express, exported from MLflow to ONNX by `python -m export`.",
        "This file is regenerated with the artifact; do not edit it by hand.",
        "",
        f"- Artifact identity: `artifact_sha256` **{metadata.artifact_sha256}** (registry version "
        f"{metadata.model_version} is only unique within one MLflow store)",
        f"- MLflow run: `{metadata.mlflow_run_id}`; exported {metadata.created_at}",
        f"- Trained on: {describe_training_data(metadata.training_data)}",
        f"- Inputs: {len(spec.model_inputs)} of the {len(spec)} accepted application fields "
        f"({len([f for f in spec.model_inputs if f.is_categorical])} categorical), spec embedded in the ONNX metadata",
        f"- Protected attributes, accepted and recorded but never model inputs: "
        f"{', '.join(spec.protected_names) or 'none'}",
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
    lines += ["", *fairness_section(metadata.fairness)]
    lines += [
        "",
        f"Parity (ONNX vs MLflow model): {parity.describe()}.",
        "",
        f"Reasons (TreeSHAP in the graph, `export/shap_graph.py`): {explanation.describe()}.",
        "",
        f"Sizes: ONNX {sizes['onnx_bytes']:,} bytes (explainer tables included); pickled scikit-learn pipeline "
        f"{sizes['pickle_bytes']:,} bytes; MLflow model directory {sizes['mlflow_model_dir_bytes']:,} bytes.",
        "",
        f"`{REFERENCE_NAME}`: {reference_rows:,} held-out rows with their ONNX scores, "
        "the reference for drift analysis.",
        "",
        "Libraries: " + ", ".join(f"{k} {v}" for k, v in metadata.library_versions.items()),
        "",
    ]
    return "\n".join(lines)


def describe_training_data(data: dict) -> str:
    if not data:
        return "not recorded (exported from a run that predates provenance)"
    when = f", trained {data['trained_at']}" if data.get("trained_at") else ""
    if data.get("kind") == "synthetic":
        return f"{data['rows']:,} synthetic rows from `{data['generator']}`, seed {data['seed']}{when}"
    return f"`{data.get('file')}` ({data.get('rows', 0):,} rows, SHA-256 `{data.get('sha256')}`){when}"


def fairness_section(report: dict) -> list[str]:
    """The fairness report as the card's tables (training/fairness.py computes it on the test set)."""
    if not report:
        return ["Fairness: not recorded for this run."]
    lines = [
        f"## Fairness (test set, {report['test_rows']:,} applicants, threshold {report['threshold']:.4f})",
        "",
        "| group | applicants | refusal rate | defaulters | share of defaulters refused |",
        "|---|---|---|---|---|",
    ]
    for grouping, groups in report["groups"].items():
        for group, o in sorted(groups.items(), key=lambda item: group_order(item[0])):
            share = "n/a" if o["defaulters_refused_share"] is None else f"{o['defaulters_refused_share']:.1%}"
            lines.append(
                f"| {grouping} {group} | {o['n']:,} | {o['refusal_rate']:.1%} | {o['defaulters']:,} | {share} |"
            )
    lines.append("")
    for grouping, rule in report["four_fifths"].items():
        if rule["ratio"] is not None:
            verdict = "meets" if rule["passes"] else "fails"
            lines.append(
                f"- Four-fifths rule, {grouping}: lowest / highest refusal rate = {rule['ratio']:.3f} "
                f"({rule['lowest']} vs {rule['highest']}; groups under 100 applicants left out): {verdict} 0.8"
            )
    if "cost_of_dropping" in report:
        other, cost = report["with_protected_as_inputs"], report["cost_of_dropping"]
        gender = other["groups"].get("gender", {})
        rates = ", ".join(f"{g} {o['refusal_rate']:.1%}" for g, o in gender.items() if o["n"] >= 100)
        lines.append(
            f"- Cost of leaving {', '.join(report['protected_attributes'])} out (same pipeline and split, trained "
            f"with it as an input): test AUC {other['auc_test']:.4f} with it, change {cost['auc_test']:+.4f}; "
            f"business cost {other['business_cost_test']:.0f} with it, change {cost['business_cost_test']:+.0f}. "
            f"With it as an input the refusal rates by gender would be {rates}."
        )
    if "proxy" in report:
        lines.append(f"- Proxy check: {report['proxy']['verdict']}.")
    return lines
