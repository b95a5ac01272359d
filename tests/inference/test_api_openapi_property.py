"""The published request schema and the validator agree: generated from /openapi.json itself,
no schema-valid applicant is refused, and no body of any shape gets a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from inference.app import create_app
from inference.settings import Settings
from tests.conftest import API_KEYS

EXAMPLES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def running(model_path: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    settings_ = Settings(  # type: ignore[call-arg]
        _env_file=None, api_key=API_KEYS[0], model_path=model_path, prediction_log_dir=tmp_path_factory.mktemp("logs")
    )
    with TestClient(create_app(settings_)) as client:
        yield client, client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def post(running: tuple[TestClient, dict[str, Any]]) -> Callable[[str, bytes], Any]:
    client, _ = running

    def send(path: str, body: bytes) -> Any:
        return client.post(path, content=body, headers={"x-api-key": API_KEYS[0], "content-type": "application/json"})

    return send


def _applicant_schema(running: tuple[TestClient, dict[str, Any]]) -> dict[str, Any]:
    _, document = running
    ref = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]]  # type: ignore[no-any-return]


def test_no_schema_valid_applicant_is_refused(
    running: tuple[TestClient, dict[str, Any]], post: Callable[[str, bytes], Any]
) -> None:
    @EXAMPLES
    @given(from_schema(_applicant_schema(running)))
    def check(applicant: dict[str, Any]) -> None:
        response = post("/predict", orjson.dumps(applicant))
        assert response.status_code == 200, response.text[:500]

    check()


def test_integral_floats_the_schema_allows_are_accepted(
    running: tuple[TestClient, dict[str, Any]], post: Callable[[str, bytes], Any]
) -> None:
    """JSON Schema's "integer" is a number without a fraction: 2.0 included, as pandas sends it."""
    schema = _applicant_schema(running)
    integers = [name for name, p in schema["properties"].items() if "integer" in orjson.dumps(p).decode()]
    assert integers

    @EXAMPLES
    @given(from_schema(schema), st.sampled_from(integers))
    def check(applicant: dict[str, Any], name: str) -> None:
        if isinstance(applicant.get(name), int):
            applicant[name] = float(applicant[name])
        assert post("/predict", orjson.dumps(applicant)).status_code == 200

    check()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)


def test_no_body_gets_a_server_error(
    running: tuple[TestClient, dict[str, Any]], post: Callable[[str, bytes], Any]
) -> None:
    schema = _applicant_schema(running)
    names = sorted(schema["properties"])

    @EXAMPLES
    @given(from_schema(schema), st.dictionaries(st.sampled_from([*names, "EXTRA"]), JSON_VALUES, max_size=5))
    def check(applicant: dict[str, Any], changes: dict[str, Any]) -> None:
        body = json.dumps({**applicant, **changes}).encode()  # the stdlib: integers of any size
        single = post("/predict", body)
        batch = post("/predict/batch", b'{"applicants": [' + body + b"]}")
        assert single.status_code in (200, 422), single.text[:500]
        assert batch.status_code == 200, batch.text[:500]  # the applicant's own problems, in its result
        if single.status_code == 422:
            (item,) = batch.json()["predictions"]
            assert {d["field"] for d in item["details"]} == {d["field"] for d in single.json()["details"]}

    check()
