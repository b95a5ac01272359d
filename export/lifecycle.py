"""The model lifecycle in the MLflow registry: which version is champion, which is challenger.

- `python -m export` exports the `champion` (models/credit_scoring.onnx, the served model);
- `python -m export --alias challenger` exports the version carrying that alias as
  models/challenger.onnx, which the service scores in shadow with CHALLENGER_MODEL_PATH;
- `python -m export --promote` moves `champion` to the challenger's version (the old champion
  keeps the alias `previous-champion`, for a rollback), removes `challenger`, and exports the new
  champion; redeploying the service with that artifact finishes the promotion (docs/MONITORING.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow

from contract.names import ARTIFACT_NAME, REFERENCE_NAME, REGISTERED_MODEL_NAME

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"


@dataclass(frozen=True)
class ArtifactNames:
    artifact: str
    reference: str
    card: str


def artifact_names(alias: str) -> ArtifactNames:
    """The champion's files keep their served names; another alias's are prefixed with it."""
    if alias == CHAMPION:
        return ArtifactNames(ARTIFACT_NAME, REFERENCE_NAME, "MODEL_CARD.md")
    return ArtifactNames(f"{alias}.onnx", f"{alias}_{REFERENCE_NAME}", f"{alias.upper()}_MODEL_CARD.md")


def alias_uri(alias: str, name: str = REGISTERED_MODEL_NAME) -> str:
    return f"models:/{name}@{alias}"


@dataclass(frozen=True)
class Promotion:
    name: str
    champion: str
    """The version now champion (was challenger)."""
    previous: str | None
    """The version that was champion (now previous-champion), None if there was none."""


def promote(name: str = REGISTERED_MODEL_NAME, source_alias: str = CHALLENGER) -> Promotion:
    """Move `champion` to the version carrying `source_alias`; the old champion becomes `previous-champion`."""
    client = mlflow.MlflowClient()
    incoming = client.get_model_version_by_alias(name, source_alias)  # MlflowException when absent
    try:
        outgoing: str | None = str(client.get_model_version_by_alias(name, CHAMPION).version)
    except mlflow.exceptions.MlflowException:
        outgoing = None
    if outgoing is not None and outgoing != str(incoming.version):
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, outgoing)
    client.set_registered_model_alias(name, CHAMPION, incoming.version)
    client.delete_registered_model_alias(name, source_alias)
    return Promotion(name, str(incoming.version), outgoing)
