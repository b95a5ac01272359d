"""Response models: the OpenAPI document's shapes, and what tests validate answers against.

The request models come from the artifact's feature spec (`contract.requests`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from inference.errors import ErrorDetail

# Responses: plain models, used for the OpenAPI document and by tests; the hot path writes
# the same shapes straight to JSON bytes.


class _Documented(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class Reason(_Documented):
    """One factor that pushed this applicant's score towards refusal."""

    feature: str = Field(examples=["ANNUITY_INCOME_RATIO"])
    """The model feature: a raw field, or one computed from raw fields (a ratio, the pensioner flag)."""
    fields: list[str] = Field(examples=[["AMT_ANNUITY", "AMT_INCOME_TOTAL"]])
    """The raw application fields it comes from."""
    value: float | str | None = Field(examples=[0.241])
    """The applicant's value (null: not provided)."""
    contribution: float = Field(gt=0, examples=[0.3127])
    """Its exact TreeSHAP contribution to the score, in log-odds (larger = more towards refusal)."""
    text: str = Field(examples=["Annuity is high relative to income"])
    """The reason in words, as a credit officer could write it in a letter."""


class Explanation(_Documented):
    """The whole attribution (`?explain=true`): base + sum of contributions = the score's log-odds."""

    base_value: float
    """The model's average log-odds over its training data."""
    contributions: dict[str, float]
    """One exact TreeSHAP value per model feature, in log-odds."""


class Prediction(_Documented):
    prediction: Literal[0, 1] = Field(examples=[0])
    """The decision at the model's business threshold: 0 = accepted, 1 = refused."""
    probability: float = Field(ge=0, le=1, examples=[0.0423])
    """The model's probability that the applicant defaults."""
    decision: Literal["accepted", "refused"] = Field(examples=["accepted"])
    """The decision in words."""
    application_id: str | None = Field(default=None, examples=["CE-2026-000123"])
    """The desk's own id for the application, as sent (null when none was sent: the request id
    then identifies the decision)."""
    reasons: list[Reason] | None = None
    """For a refused applicant (and any applicant with `?explain=true`): the factors that pushed
    the score hardest towards refusal, largest first (REASONS_PER_REFUSAL of them at most)."""
    explanation: Explanation | None = None
    """With `?explain=true` only: the whole attribution vector."""


class PredictionResponse(Prediction):
    threshold: float = Field(examples=[0.0811])
    """The business threshold: refused when probability >= threshold."""
    model_version: str = Field(examples=["1"])
    """The version of the model that scored the applicant."""
    request_id: str = Field(examples=["0f3c9a6e2b8d4f51a7c3e9b2d6f18a40"])
    """The request's id, as in the x-request-id header and the prediction log."""


class ApplicantError(_Documented):
    """A batch applicant refused on its own (the others are still scored)."""

    error: Literal["validation_error"]
    message: str
    details: list[ErrorDetail]
    """Each of this applicant's fields at fault (names without the batch position)."""


class BatchPredictionResponse(_Documented):
    predictions: list[Prediction | ApplicantError]
    """One result per applicant, in the request's order: a decision, or that applicant's problems."""
    threshold: float = Field(examples=[0.0811])
    """The business threshold: refused when probability >= threshold."""
    model_version: str = Field(examples=["1"])
    """The version of the model that scored the applicants."""
    request_id: str = Field(examples=["0f3c9a6e2b8d4f51a7c3e9b2d6f18a40"])
    """The request's id, shared by all the applicants' records in the prediction log."""


class ModelInfo(_Documented):
    name: str
    version: str
    """The MLflow registry version it was exported from (a fresh registry restarts at 1)."""
    artifact_sha256: str
    """The artifact's identity: a content hash, unlike the registry version it cannot go backwards."""
    mlflow_run_id: str
    threshold: float
    created_at: str
    trained_on: dict[str, Any]
    """What the model was trained on and when: the synthetic generator and its seed, or the real
    file's name and SHA-256."""
    inputs: list[str]
    """The fields the model reads, in input order."""
    protected_attributes: list[str]
    """Fields the API accepts and records but the model never reads (changing one never changes a score)."""
    metrics: dict[str, Any]
    """Held-out metrics recorded at training time."""
    fairness: dict[str, Any]
    """Training-time fairness report on the test set: refusal rates and defaulters refused by
    gender and age band, four-fifths ratios, what leaving the protected attribute out cost,
    the proxy check."""
    reasons: bool
    """Whether refusals carry exact reasons (the artifact carries its TreeSHAP tables)."""


class ServiceInfo(_Documented):
    service: str
    version: str
    ready: bool
    model: ModelInfo | None
    """The served model; null until it is loaded."""
    challenger: ModelInfo | None = None
    """The challenger scored in shadow on the same applicants (CHALLENGER_MODEL_PATH), if any."""
    limits: dict[str, int]
    docs: str


class Health(_Documented):
    status: Literal["ok"]
    git_sha: str
    """The commit the running image was built from ("unknown" outside a CI-built image)."""


class Readiness(_Documented):
    status: Literal["ready"]
    model_version: str
    """The version of the loaded model."""
