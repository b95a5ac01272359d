"""Request and response models.

The request models are built at start-up from the feature spec carried by the artifact, so
the API accepts exactly what the model was trained on: numbers within the training range,
categories among the known levels, the never-missing fields required, the others optional
(absent or null both mean missing, as in training). Strict JSON types: a number sent as
text is refused rather than guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from inference.errors import InvalidInput
from inference.spec import Feature, FeatureSpec

APPLICANT_MODEL = "Applicant"
BATCH_MODEL = "BatchRequest"


@dataclass(frozen=True)
class RequestModels:
    """The validated request types for one artifact, and the example applicants for the docs."""

    applicant: type[BaseModel]
    batch: type[BaseModel]
    max_batch_size: int
    example: dict[str, Any]
    batch_example: dict[str, Any]

    def parse_applicant(self, body: bytes) -> BaseModel:
        try:
            return self.applicant.model_validate_json(body)
        except ValidationError as exc:
            raise InvalidInput.from_validation_error(exc) from None

    def parse_batch(self, body: bytes) -> list[BaseModel]:
        try:
            return self.batch.model_validate_json(body).applicants  # type: ignore[attr-defined, no-any-return]
        except ValidationError as exc:
            raise InvalidInput.from_validation_error(exc) from None

    def openapi_components(self) -> dict[str, Any]:
        """JSON schemas of both request models, keyed for `components.schemas`."""
        schema = self.batch.model_json_schema(ref_template="#/components/schemas/{model}")
        definitions = schema.pop("$defs")
        return {**definitions, BATCH_MODEL: schema}


def build_request_models(spec: FeatureSpec, max_batch_size: int) -> RequestModels:
    fields: dict[str, Any] = {feature.name: _field(feature) for feature in spec.features}
    applicant = create_model(  # type: ignore[call-overload]
        APPLICANT_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        __doc__="One applicant's raw application fields (Home Credit names). Absent or null = missing.",
        **fields,
    )
    batch = create_model(  # type: ignore[call-overload]
        BATCH_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__=f"Up to {max_batch_size} applicants, scored in one model call; results come back in order.",
        applicants=(
            list[applicant],  # type: ignore[valid-type]
            Field(min_length=1, max_length=max_batch_size, description="The applicants, in any order."),
        ),
    )
    example = spec.example()
    sparse = {**example, **{f.name: None for f in spec.features if f.nullable}}
    return RequestModels(
        applicant=applicant,
        batch=batch,
        max_batch_size=max_batch_size,
        example=example,
        batch_example={"applicants": [example, sparse]},
    )


def _field(feature: Feature) -> tuple[Any, Any]:
    kind: Any
    constraints: dict[str, Any] = {}
    if feature.is_categorical:
        kind = Literal[feature.levels]  # type: ignore[valid-type]
    elif feature.dtype == "int64":
        kind = int
        constraints = _bounds(feature)
    else:
        kind = float
        constraints = {**_bounds(feature), "allow_inf_nan": False}
    info = Field(
        default=None if feature.nullable else ...,
        description=feature.description,
        examples=[feature.example],
        **constraints,
    )
    return (kind | None if feature.nullable else kind), info


def _bounds(feature: Feature) -> dict[str, Any]:
    cast = int if feature.dtype == "int64" else float
    bounds = {}
    if feature.minimum is not None:
        bounds["ge"] = cast(feature.minimum)
    if feature.maximum is not None:
        bounds["le"] = cast(feature.maximum)
    return bounds


# Responses: plain models, used for the OpenAPI document and by tests; the hot path writes
# the same shapes straight to JSON bytes.


class _Documented(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class Prediction(_Documented):
    prediction: Literal[0, 1] = Field(examples=[0])
    """The decision at the model's business threshold: 0 = accepted, 1 = refused."""
    probability: float = Field(ge=0, le=1, examples=[0.0423])
    """The model's probability that the applicant defaults."""
    decision: Literal["accepted", "refused"] = Field(examples=["accepted"])
    """The decision in words."""


class PredictionResponse(Prediction):
    threshold: float = Field(examples=[0.0811])
    """The business threshold: refused when probability >= threshold."""
    model_version: str = Field(examples=["1"])
    """The version of the model that scored the applicant."""
    request_id: str = Field(examples=["0f3c9a6e2b8d4f51a7c3e9b2d6f18a40"])
    """The request's id, as in the x-request-id header and the prediction log."""


class BatchPredictionResponse(_Documented):
    predictions: list[Prediction]
    """One result per applicant, in the request's order."""
    threshold: float = Field(examples=[0.0811])
    """The business threshold: refused when probability >= threshold."""
    model_version: str = Field(examples=["1"])
    """The version of the model that scored the applicants."""
    request_id: str = Field(examples=["0f3c9a6e2b8d4f51a7c3e9b2d6f18a40"])
    """The request's id, shared by all the applicants' records in the prediction log."""


class ModelInfo(_Documented):
    name: str
    version: str
    mlflow_run_id: str
    threshold: float
    n_features: int
    created_at: str
    metrics: dict[str, Any]
    """Held-out metrics recorded at training time."""


class ServiceInfo(_Documented):
    service: str
    version: str
    ready: bool
    model: ModelInfo | None
    """The served model; null until it is loaded."""
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
