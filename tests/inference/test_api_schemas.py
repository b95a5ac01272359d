"""Request models built from the feature spec: what they accept, what they refuse, what /docs shows."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from contract.requests import RequestInvalid, RequestModels, build_request_models
from contract.spec import FeatureSpec

MAX_BATCH = 5


@pytest.fixture(scope="module")
def models(spec: FeatureSpec) -> RequestModels:
    return build_request_models(spec, max_batch_size=MAX_BATCH)


def _problems(models: RequestModels, body: Any, batch: bool = False) -> dict[str, str]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(RequestInvalid) as caught:
        models.parse_batch(raw) if batch else models.parse_applicant(raw)
    return {p.field: p.problem for p in caught.value.problems}


def _a_field(spec: FeatureSpec, *, categorical: bool, nullable: bool, dtype: str | None = None) -> str:
    return next(
        f.name
        for f in spec.features
        if f.is_categorical == categorical and f.nullable == nullable and (dtype is None or f.dtype == dtype)
    )


def test_the_example_is_valid_and_kept_as_sent(models: RequestModels, example: dict[str, Any]) -> None:
    applicant = models.parse_applicant(orjson.dumps(example))
    assert applicant.__dict__ == {**example, "application_id": None}
    assert list(applicant.__dict__) == [*example, "application_id"]  # spec order, then the desk id


def test_every_field_is_declared_from_the_spec(models: RequestModels, spec: FeatureSpec) -> None:
    fields = models.applicant.model_fields
    assert list(fields) == [*spec.names, "application_id"]  # the desk's id: optional, not a model input
    for feature in spec.features:
        field = fields[feature.name]
        assert field.is_required() is not feature.nullable
        assert field.description == feature.description
        assert field.examples == [feature.example]


def test_json_schema_carries_types_bounds_and_levels(models: RequestModels, spec: FeatureSpec) -> None:
    properties = models.applicant.model_json_schema()["properties"]
    income = properties["AMT_INCOME_TOTAL"]
    assert income["type"] == "number"
    assert income["minimum"] == spec["AMT_INCOME_TOTAL"].minimum
    assert income["maximum"] == spec["AMT_INCOME_TOTAL"].maximum
    assert properties["CNT_CHILDREN"]["type"] == "integer"
    assert properties["NAME_CONTRACT_TYPE"]["enum"] == list(spec["NAME_CONTRACT_TYPE"].levels)
    optional = _a_field(spec, categorical=True, nullable=True)
    assert {"type": "null"} in properties[optional]["anyOf"]


def test_missing_optional_fields_mean_missing(models: RequestModels, spec: FeatureSpec) -> None:
    required = {f.name: f.example for f in spec.features if not f.nullable}
    applicant = models.parse_applicant(orjson.dumps(required)).__dict__
    assert all(applicant[f.name] is None for f in spec.features if f.nullable)
    explicit_nulls = {**required, **{f.name: None for f in spec.features if f.nullable}}
    assert models.parse_applicant(orjson.dumps(explicit_nulls)).__dict__ == applicant


def test_negative_income_is_refused(models: RequestModels, example: dict[str, Any]) -> None:
    problems = _problems(models, {**example, "AMT_INCOME_TOTAL": -1000.0})
    assert list(problems) == ["AMT_INCOME_TOTAL"]
    assert "greater than or equal" in problems["AMT_INCOME_TOTAL"]


def test_above_the_range_is_refused(models: RequestModels, example: dict[str, Any], spec: FeatureSpec) -> None:
    top = spec["CNT_CHILDREN"].maximum
    assert top is not None
    problems = _problems(models, {**example, "CNT_CHILDREN": int(top) + 1})
    assert "less than or equal" in problems["CNT_CHILDREN"]


@pytest.mark.parametrize("value", ["202500", "a lot", True, [1], {"v": 1}])
def test_a_number_must_be_a_json_number(models: RequestModels, example: dict[str, Any], value: Any) -> None:
    problems = _problems(models, {**example, "AMT_INCOME_TOTAL": value})
    assert problems["AMT_INCOME_TOTAL"] == "Input should be a valid number"


def test_an_integer_field_refuses_fractions(models: RequestModels, example: dict[str, Any]) -> None:
    assert "valid integer" in _problems(models, {**example, "CNT_CHILDREN": 1.5})["CNT_CHILDREN"]


@pytest.mark.parametrize("value", [2.0, 0.0, -0.0])
def test_an_integer_field_accepts_an_integral_float(
    models: RequestModels, example: dict[str, Any], value: float
) -> None:
    """JSON Schema's "integer" includes 2.0, and a pandas column with a missing value sends ints as floats."""
    applicant = models.parse_applicant(orjson.dumps({**example, "CNT_CHILDREN": value}))
    assert applicant.CNT_CHILDREN == int(value) and type(applicant.CNT_CHILDREN) is int  # type: ignore[attr-defined]


def test_an_integral_float_above_the_range_is_still_refused(
    models: RequestModels, example: dict[str, Any], spec: FeatureSpec
) -> None:
    too_many = float(spec["CNT_CHILDREN"].maximum or 0) + 1.0
    assert "less than or equal" in _problems(models, {**example, "CNT_CHILDREN": too_many})["CNT_CHILDREN"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_nan_and_infinity_are_refused(models: RequestModels, example: dict[str, Any], literal: bytes) -> None:
    body = orjson.dumps({**example, "AMT_INCOME_TOTAL": 0.5}).replace(b"0.5", literal, 1)
    problems = _problems(models, body)
    assert problems["AMT_INCOME_TOTAL"] == "Input should be a finite number"


def test_nan_in_an_optional_float_is_refused_too(
    models: RequestModels, example: dict[str, Any], spec: FeatureSpec
) -> None:
    name = _a_field(spec, categorical=False, nullable=True, dtype="float64")
    body = orjson.dumps({**example, name: 0.123456}).replace(b"0.123456", b"NaN", 1)
    assert _problems(models, body)[name] == "Input should be a finite number"


def test_unknown_category_level_is_refused(models: RequestModels, example: dict[str, Any]) -> None:
    problems = _problems(models, {**example, "NAME_CONTRACT_TYPE": "Mortgage"})
    assert problems["NAME_CONTRACT_TYPE"].startswith("Input should be 'Cash loans'")


def test_unknown_field_is_refused(models: RequestModels, example: dict[str, Any]) -> None:
    assert _problems(models, {**example, "SK_ID_CURR": 100002}) == {"SK_ID_CURR": "Extra inputs are not permitted"}


def test_missing_or_null_required_field_is_refused(models: RequestModels, example: dict[str, Any]) -> None:
    without = {k: v for k, v in example.items() if k != "AMT_CREDIT"}
    assert _problems(models, without) == {"AMT_CREDIT": "Field required"}
    null = _problems(models, {**example, "AMT_CREDIT": None})["AMT_CREDIT"]
    assert null.startswith("Field required") and "null" in null and "number" not in null


def test_every_problem_is_reported_at_once(models: RequestModels, example: dict[str, Any]) -> None:
    body = {**example, "AMT_INCOME_TOTAL": -1.0, "CODE_GENDER": "?", "EXTRA": 1}
    assert set(_problems(models, body)) == {"AMT_INCOME_TOTAL", "CODE_GENDER", "EXTRA"}


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"text"', "\u00e9t\u00e9".encode("latin-1")])
def test_a_body_that_is_not_an_object_is_refused(models: RequestModels, body: bytes) -> None:
    assert list(_problems(models, body)) == ["body"]


def test_each_batch_applicant_is_judged_on_its_own(models: RequestModels, example: dict[str, Any]) -> None:
    body = {"applicants": [example, {**example, "AMT_INCOME_TOTAL": -5.0}, {**example, "CNT_CHILDREN": 1.0}]}
    first, second, third = models.parse_batch(orjson.dumps(body))
    assert first.__dict__ == {**example, "application_id": None}  # type: ignore[union-attr]
    assert isinstance(second, RequestInvalid) and [p.field for p in second.problems] == ["AMT_INCOME_TOTAL"]
    assert third.CNT_CHILDREN == 1  # type: ignore[union-attr]  # the checked model, for that item only


def test_one_applicant_without_the_envelope_gets_one_short_message(
    models: RequestModels, example: dict[str, Any]
) -> None:
    problems = _problems(models, example, batch=True)
    assert list(problems) == ["body"] and '{"applicants": [...]}' in problems["body"]


def test_batch_size_is_bounded(models: RequestModels, example: dict[str, Any]) -> None:
    assert len(models.parse_batch(orjson.dumps({"applicants": [example] * MAX_BATCH}))) == MAX_BATCH
    assert "at most 5 items" in _problems(models, {"applicants": [example] * (MAX_BATCH + 1)}, batch=True)["applicants"]
    assert "applicants" in _problems(models, {"applicants": []}, batch=True)
    assert _problems(models, [example], batch=True) == {"body": "Input should be an object"}


def test_batch_example_is_valid(models: RequestModels) -> None:
    assert len(models.parse_batch(orjson.dumps(models.batch_example))) == 2


# The OpenAPI document: the running app declares the artifact's schemas and a working example.


def test_openapi_declares_request_bodies_and_examples(client: TestClient, auth: dict[str, str]) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "Applicant" in schemas and "BatchRequest" in schemas
    assert len(schemas["Applicant"]["properties"]) == 120 + 1  # the features and application_id
    assert schemas["Applicant"]["additionalProperties"] is False
    for path, name in (("/predict", "Applicant"), ("/predict/batch", "BatchRequest")):
        body = document["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        content = body["content"]["application/json"]
        assert content["schema"] == {"$ref": f"#/components/schemas/{name}"}
        # Every example Swagger offers scores successfully.
        for example in content["examples"].values():
            response = client.post(path, json=example["value"], headers=auth)
            assert response.status_code == 200, response.text


def test_openapi_documents_responses_and_errors(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictionResponse"
    }
    for status in ("401", "413", "422", "503"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }


@pytest.mark.parametrize("application_id", ["CE-2026-000123", "a", "x" * 64, "branch/42:7.b_c"])
def test_an_application_id_is_accepted_and_kept(
    models: RequestModels, example: dict[str, Any], application_id: str
) -> None:
    applicant = models.parse_applicant(orjson.dumps({**example, "application_id": application_id}))
    assert applicant.application_id == application_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("application_id", ["", "x" * 65, "-leading", "with space", "<script>", 123])
def test_a_bad_application_id_is_refused(models: RequestModels, example: dict[str, Any], application_id: Any) -> None:
    assert "application_id" in _problems(models, {**example, "application_id": application_id})
