"""The artifact's self-description, stored as ONNX metadata (string key -> string value).

Export writes it, the scorer reads it: one definition of the keys for both sides.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from contract.spec import FeatureSpec

INPUT_NAME = "input"
PROBABILITY_OUTPUT = "probabilities"
# The attribution outputs (export/shap_graph.py): TreeSHAP computed in the scoring run itself.
CONTRIBUTIONS_OUTPUT = "contributions"
TOP_FEATURES_OUTPUT = "top_features"
MODEL_FEATURES_OUTPUT = "model_features"
ATTRIBUTED_ROWS_OUTPUT = "attributed_rows"
ATTRIBUTION_OUTPUTS = (ATTRIBUTED_ROWS_OUTPUT, CONTRIBUTIONS_OUTPUT, TOP_FEATURES_OUTPUT, MODEL_FEATURES_OUTPUT)
ATTRIBUTION_THRESHOLD_INPUT = "attribution_threshold"
"""Optional float32 scalar input (an initializer, default: `contract.explain.attribution_bound` of the
threshold): the graph attributes the rows whose probability of default is at least this (a refusal's), and only them."""

ARTIFACT_SHA256_KEY = "artifact_sha256"
"""SHA-256 of the serialised artifact before this one key was added: its identity (docs/CONTRACTS.md)."""


class MetadataError(ValueError):
    """The artifact lacks a key, or a value does not parse."""


@dataclass(frozen=True)
class ModelMetadata:
    model_name: str
    model_version: str
    mlflow_run_id: str
    threshold: float
    feature_spec: FeatureSpec
    created_at: str
    metrics: dict[str, float] = field(default_factory=dict)
    library_versions: dict[str, str] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    training_data: dict[str, Any] = field(default_factory=dict)
    """What the model was trained on and when: synthetic generator and seed, or the file and its SHA-256."""
    fairness: dict[str, Any] = field(default_factory=dict)
    """The training-time fairness report (training/fairness.py) on the test set."""
    explainer: dict[str, Any] = field(default_factory=dict)
    """The TreeSHAP tables and feature names `contract.explain.Explainer` reads; empty: no reasons."""
    explanation_proof: dict[str, Any] = field(default_factory=dict)
    """The export's exactness proof of the explainer against LightGBM (rows, max differences)."""
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Held-out applicants the model accepts and refuses ("accepted", "refused"), for the docs
    and GET /example; empty for older artifacts (the spec's example is used instead)."""
    artifact_sha256: str = ""
    """The artifact's identity; empty for artifacts exported before it existed."""

    @property
    def protected_attributes(self) -> list[str]:
        """Accepted fields the model never reads (from the feature spec)."""
        return self.feature_spec.protected_names

    @property
    def model_inputs(self) -> list[str]:
        return self.feature_spec.input_names

    def to_onnx_map(self) -> dict[str, str]:
        """Every key but `artifact_sha256`, which export adds last, over the serialised rest."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "mlflow_run_id": self.mlflow_run_id,
            "threshold": repr(self.threshold),
            "feature_spec": self.feature_spec.to_json(),
            "created_at": self.created_at,
            "metrics": json.dumps(self.metrics),
            "library_versions": json.dumps(self.library_versions),
            "parity": json.dumps(self.parity),
            "training_data": json.dumps(self.training_data),
            "fairness": json.dumps(self.fairness),
            "explainer": json.dumps(self.explainer, separators=(",", ":")),
            "explanation_proof": json.dumps(self.explanation_proof),
            "examples": json.dumps(self.examples),
        }

    @classmethod
    def from_onnx_map(cls, values: dict[str, str]) -> ModelMetadata:
        try:
            return cls(
                model_name=values["model_name"],
                model_version=values["model_version"],
                mlflow_run_id=values["mlflow_run_id"],
                threshold=float(values["threshold"]),
                feature_spec=FeatureSpec.from_json(values["feature_spec"]),
                created_at=values["created_at"],
                metrics=json.loads(values.get("metrics", "{}")),
                library_versions=json.loads(values.get("library_versions", "{}")),
                parity=json.loads(values.get("parity", "{}")),
                training_data=json.loads(values.get("training_data", "{}")),
                fairness=json.loads(values.get("fairness", "{}")),
                explainer=json.loads(values.get("explainer", "{}")),
                explanation_proof=json.loads(values.get("explanation_proof", "{}")),
                examples=json.loads(values.get("examples", "{}")),
                artifact_sha256=values.get(ARTIFACT_SHA256_KEY, ""),
            )
        except KeyError as exc:
            raise MetadataError(f"model metadata lacks the key {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise MetadataError(f"model metadata does not parse: {exc}") from None
