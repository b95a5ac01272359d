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

    def to_onnx_map(self) -> dict[str, str]:
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
            )
        except KeyError as exc:
            raise MetadataError(f"model metadata lacks the key {exc.args[0]!r}") from None
        except (ValueError, TypeError) as exc:
            raise MetadataError(f"model metadata does not parse: {exc}") from None
