"""The API key: required on scoring calls only, several keys for rotation, never leaked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from inference.app import create_app
from inference.security import KeyRing
from inference.settings import Settings

MISSING = "Missing API key: send it in the x-api-key header"
INVALID = "Invalid API key"


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (lambda key: {}, MISSING),
        (lambda key: {"x-api-key": ""}, MISSING),
        (lambda key: {"x-api-key": "wrong-key"}, INVALID),
        (lambda key: {"x-api-key": key[:-1]}, INVALID),
        (lambda key: {"x-api-key": key + "x"}, INVALID),
        (lambda key: {"x-api-key": key.upper()}, INVALID),
        (lambda key: {"authorization": f"Bearer {key}"}, MISSING),
    ],
    ids=["absent", "empty", "wrong", "prefix", "longer", "case", "bearer"],
)
def test_scoring_without_a_valid_key_is_401(
    client: TestClient,
    example: dict,
    api_keys: tuple[str, ...],
    path: str,
    headers: Callable[[str], dict[str, str]],
    message: str,
) -> None:
    body = example if path == "/predict" else {"applicants": [example]}
    response = client.post(path, json=body, headers=headers(api_keys[0]))
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.json()["message"] == message
    assert response.headers["www-authenticate"].startswith("APIKey")


def test_key_is_checked_before_the_body(client: TestClient) -> None:
    response = client.post("/predict", content=b"not even json", headers={"content-type": "application/json"})
    assert response.status_code == 401


def test_every_configured_key_works_for_rotation(client: TestClient, example: dict, api_keys: tuple[str, ...]) -> None:
    assert len(api_keys) == 2
    for key in api_keys:
        assert client.post("/predict", json=example, headers={"x-api-key": key}).status_code == 200


def test_open_endpoints_need_no_key(client: TestClient) -> None:
    for path in ("/", "/health", "/ready", "/example", "/metrics", "/openapi.json", "/docs", "/redoc"):
        assert client.get(path).status_code == 200, path


def test_openapi_declares_the_api_key_scheme_on_keyed_endpoints_only(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": document["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    for path, operations in document["paths"].items():
        for operation in operations.values():
            secured = operation.get("security") == [{"ApiKey": []}]
            assert secured == (path.startswith("/predict") or path == "/outcomes"), path  # outcomes: its own key


def test_keys_never_reach_logs_responses_or_records(
    make_settings: Callable[..., Settings],
    log_dir: Path,
    example: dict,
    api_keys: tuple[str, ...],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(log_level="DEBUG")
    seen: list[str] = [repr(settings), str(settings)]
    with TestClient(create_app(settings)) as client:
        for headers in ({"x-api-key": api_keys[0]}, {"x-api-key": api_keys[1]}, {"x-api-key": "guess-123"}, {}):
            response = client.post("/predict", json=example, headers=headers)
            seen += [response.text, str(response.headers)]
        response = client.post("/predict", json={"bad": 1}, headers={"x-api-key": api_keys[0]})
        seen += [response.text, str(response.headers)]
        for path in ("/", "/metrics", "/openapi.json", "/example"):
            seen.append(client.get(path).text)
        seen.append(repr(client.app.state.loaded.service.keys.scopes["scoring"]))  # type: ignore[attr-defined]
    logs = [caplog.text, *capfd.readouterr(), *(path.read_text() for path in log_dir.glob("*.jsonl"))]
    assert len(logs) > 2 and "serving" in caplog.text
    everything = "\n".join(seen + logs)
    for key in api_keys:
        assert key not in everything
    assert "guess-123" not in "\n".join(logs)  # a wrong key may be a typo of a real one: not logged either


def test_key_ring_compares_every_key() -> None:
    ring = KeyRing([SecretStr("alpha"), SecretStr("beta")])
    assert ring.accepts("alpha") and ring.accepts("beta")
    assert not ring.accepts("gamma") and not ring.accepts("") and not ring.accepts("alph")
    assert "alpha" not in repr(ring)
    assert not KeyRing([]).accepts("")  # an unset scope (no OUTCOME_API_KEY) accepts nothing


def test_each_key_has_one_scope(make_settings: Any, example: dict[str, Any]) -> None:
    settings = make_settings(outcome_api_key="outcome-key-123456")
    with TestClient(create_app(settings)) as client:
        response = client.post("/predict", json=example, headers={"x-api-key": "outcome-key-123456"})
        assert response.status_code == 403 and response.json()["error"] == "forbidden"
        assert "outcome-key-123456" not in response.text
        metrics = client.get("/metrics").text
    assert "api_key_failures_total 0.0" in metrics  # a real key of another scope is no guess


def test_a_key_cannot_have_two_scopes(make_settings: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        make_settings(api_key="shared-key-1,k2", outcome_api_key="shared-key-1")
    assert "one scope" in str(caught.value) and "shared-key-1" not in str(caught.value)
