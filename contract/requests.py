"""Request models, built from the feature spec carried by the artifact.

The API, the batch job and the simulator validate with these, so they accept exactly what
the model was trained on: numbers within the training range, categories among the known
levels, the never-missing fields required, the others optional (absent or null both mean
missing, as in training). Strict JSON types: a number sent as text is refused rather than
guessed. A refusal is a `RequestInvalid` listing each field and its problem, the words the
API's 422 and the batch job's rejects both carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from contract.spec import Feature, FeatureSpec


class FieldProblem(NamedTuple):
    field: str
    """Where: a field name, `applicants.3.AMT_INCOME_TOTAL` in a batch, or `body`."""
    problem: str
    """What is wrong with it (never the value itself: problems end up in logs)."""


class RequestInvalid(ValueError):
    """A request body the models refuse; `problems` names every field at fault."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__(f"Invalid request: {', '.join(dict.fromkeys(p.field for p in problems))}")

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]]) -> RequestInvalid:
        """From pydantic's error dicts: the location joined with dots, the input left out."""
        return cls([FieldProblem(".".join(str(part) for part in e["loc"]) or "body", e["msg"]) for e in errors])

    @classmethod
    def from_validation_error(cls, exc: ValidationError) -> RequestInvalid:
        return cls.from_errors(exc.errors(include_url=False, include_input=False, include_context=False))


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
            raise RequestInvalid.from_validation_error(exc) from None

    def parse_batch(self, body: bytes) -> list[BaseModel]:
        try:
            return self.batch.model_validate_json(body).applicants  # type: ignore[attr-defined, no-any-return]
        except ValidationError as exc:
            raise RequestInvalid.from_validation_error(exc) from None

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
