"""Request models, built from the feature spec carried by the artifact.

The API, the batch job and the simulator validate with these, so they accept exactly what
the model was trained on: numbers within the training range, categories among the known
levels, the never-missing fields required, the others optional (absent or null both mean
missing, as in training). Strict JSON types: a number sent as text is refused rather than
guessed. A refusal is a `RequestInvalid` listing each field and its problem, the words the
API's 422 and the batch job's rejects both carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticCustomError, from_json, to_json

# Re-exported: the API and the tests name the problems from here, with the models that find them.
from contract.problems import FieldProblem as FieldProblem
from contract.problems import RequestInvalid as RequestInvalid
from contract.spec import Feature, FeatureSpec

APPLICANT_MODEL = "Applicant"
APPLICATION_ID = "application_id"
APPLICATION_ID_FIELD = (
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$",
        description="The desk's own id for this application (not a model input): echoed in the answer "
        "and kept in the decision record, so outcomes can be reported against it.",
        examples=["CE-2026-000123"],
    ),
)
BATCH_MODEL = "BatchRequest"
NOT_AN_ENVELOPE = (
    'Send the applicants as {"applicants": [...]} (this body looks like one applicant: '
    "POST it to /predict, or wrap it in a list)"
)


@dataclass(frozen=True)
class RequestModels:
    """The validated request types for one artifact, and the example applicants for the docs.

    Two models per applicant, one meaning: `applicant` is strict and fast (straight from the
    JSON bytes, no Python-level validator), `applicant_checked` adds what the JSON schema
    promises but strict mode would refuse (an integral float such as `2.0` for an integer
    field) and a clear message for null in a required field. Only a body the fast model
    refuses is validated again by the checked one, so a valid request pays for one pass.
    """

    applicant: type[BaseModel]
    applicant_checked: type[BaseModel]
    batch: type[BaseModel]
    envelope: type[BaseModel]
    max_batch_size: int
    example: dict[str, Any]
    """The default example: the typical accepted applicant when the artifact has one."""
    examples: dict[str, dict[str, Any]]
    """Named examples ("accepted", "refused", or the spec's "example")."""
    batch_example: dict[str, Any]

    def parse_applicant(self, body: bytes | str) -> BaseModel:
        try:
            return self.applicant.model_validate_json(body)
        except ValidationError:
            pass
        try:
            return self.applicant_checked.model_validate_json(body)
        except ValidationError as exc:
            raise RequestInvalid.from_validation_error(exc) from None

    def validate_applicant(self, applicant: Mapping[str, Any]) -> BaseModel:
        """`parse_applicant` for values already in Python (the batch job's rows): same rules, same words."""
        try:
            return self.applicant.model_validate(applicant)
        except ValidationError:
            pass
        try:
            return self.applicant_checked.model_validate(applicant)
        except ValidationError as exc:
            raise RequestInvalid.from_validation_error(exc) from None

    def parse_batch(self, body: bytes) -> list[BaseModel | RequestInvalid]:
        """Each applicant validated on its own: the model, or its problems (fields without the
        batch position). A body that is not a valid envelope raises RequestInvalid."""
        try:
            return list(self.batch.model_validate_json(body).applicants)  # type: ignore[attr-defined]
        except ValidationError:
            pass
        try:
            envelope = self.envelope.model_validate_json(body)
        except ValidationError as exc:
            invalid = RequestInvalid.from_validation_error(exc)
            if _looks_like_an_applicant(body, self.applicant):
                raise RequestInvalid([FieldProblem("body", NOT_AN_ENVELOPE)]) from None
            raise invalid from None
        results: list[BaseModel | RequestInvalid] = []
        for item in envelope.applicants:  # type: ignore[attr-defined]
            try:
                results.append(self.parse_applicant(to_json(item)))
            except RequestInvalid as invalid:
                results.append(invalid)
        return results

    def openapi_components(self) -> dict[str, Any]:
        """JSON schemas of both request models, keyed for `components.schemas`."""
        schema = self.batch.model_json_schema(ref_template="#/components/schemas/{model}")
        definitions = schema.pop("$defs")
        return {**definitions, BATCH_MODEL: schema}


def build_request_models(
    spec: FeatureSpec, max_batch_size: int, examples: Mapping[str, dict[str, Any]] | None = None
) -> RequestModels:
    """The request models of `spec`; `examples` are the artifact's typical accepted and refused
    applicants (ModelMetadata.examples), shown in the docs; without them, the spec's example."""
    doc = "One applicant's raw application fields (Home Credit names). Absent or null = missing."
    applicant = create_model(  # type: ignore[call-overload]
        APPLICANT_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        __doc__=doc,
        **{feature.name: _field(feature) for feature in spec.features},
        **{APPLICATION_ID: APPLICATION_ID_FIELD},
    )
    applicant_checked = create_model(  # type: ignore[call-overload]
        APPLICANT_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        __doc__=doc,
        **{feature.name: _field(feature, checked=True) for feature in spec.features},
        **{APPLICATION_ID: APPLICATION_ID_FIELD},
    )
    batch_doc = f"Up to {max_batch_size} applicants, scored in one model call; results come back in order."
    size = Field(min_length=1, max_length=max_batch_size, description="The applicants, in any order.")
    batch = create_model(  # type: ignore[call-overload]
        BATCH_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__=batch_doc,
        applicants=(list[applicant], size),  # type: ignore[valid-type]
    )
    envelope = create_model(  # type: ignore[call-overload]
        BATCH_MODEL,
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__=batch_doc,
        applicants=(list[Any], size),
    )
    named = dict(examples or {}) or {"example": spec.example()}
    example = named.get("accepted") or next(iter(named.values()))
    sparse = {**example, **{f.name: None for f in spec.features if f.nullable}}
    return RequestModels(
        applicant=applicant,
        applicant_checked=applicant_checked,
        batch=batch,
        envelope=envelope,
        max_batch_size=max_batch_size,
        example=example,
        examples=named,
        batch_example={"applicants": [*named.values(), sparse]},
    )


def _field(feature: Feature, checked: bool = False) -> tuple[Any, Any]:
    kind: Any
    constraints: dict[str, Any] = {}
    if feature.is_categorical:
        kind = Literal[feature.levels]  # type: ignore[valid-type]
    elif feature.dtype == "int64":
        kind = Annotated[int, BeforeValidator(_integral_float_as_int)] if checked else int
        constraints = _bounds(feature)
    else:
        kind = float
        constraints = {**_bounds(feature), "allow_inf_nan": False}
    if checked and not feature.nullable:
        kind = Annotated[kind, BeforeValidator(_refuse_null)]
    info = Field(
        default=None if feature.nullable else ...,
        description=feature.description,
        examples=[feature.example],
        **constraints,
    )
    return (kind | None if feature.nullable else kind), info


def _integral_float_as_int(value: Any) -> Any:
    # JSON Schema's "integer" includes 2.0, and a pandas client sends an integer column holding
    # a missing value as floats; 2.5 stays a float, which the strict int refuses.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError("required_not_null", "Field required: null is not allowed here (send a value)")
    return value


def _looks_like_an_applicant(body: bytes, applicant: type[BaseModel]) -> bool:
    try:
        parsed = from_json(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and "applicants" not in parsed and bool(set(parsed) & set(applicant.model_fields))


def _bounds(feature: Feature) -> dict[str, Any]:
    cast = int if feature.dtype == "int64" else float
    bounds = {}
    if feature.minimum is not None:
        bounds["ge"] = cast(feature.minimum)
    if feature.maximum is not None:
        bounds["le"] = cast(feature.maximum)
    return bounds
