"""Both doors (the lean ASGI door and the FastAPI routes) are answered by the one scoring service."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

import inference.routes.scoring as scoring
from inference.app import create_app
from inference.settings import Settings


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the requests the FastAPI routes answered."""
    calls: list[str] = []
    real_answer = scoring._answer

    async def counting(request, api_key):  # type: ignore[no-untyped-def]
        calls.append(request.scope["path"])
        return await real_answer(request, api_key)

    monkeypatch.setattr(scoring, "_answer", counting)
    return calls


def _cases(example: dict[str, Any], key: str) -> list[tuple[str, bytes | dict[str, Any], dict[str, str]]]:
    auth = {"x-api-key": key}
    return [
        ("/predict", example, auth),
        ("/predict", example, {}),
        ("/predict", example, {"x-api-key": "wrong"}),
        ("/predict", {**example, "AMT_INCOME_TOTAL": -1}, auth),
        ("/predict", b"[1, 2", auth),
        ("/predict", b"x" * 70_000, auth),
        ("/predict/batch", {"applicants": [example, example]}, auth),
        ("/predict/batch", {"applicants": []}, auth),
    ]


def _comparable(response: Any) -> tuple[int, Any, dict[str, str]]:
    body = response.json()
    body.pop("request_id", None)
    kept = {name: response.headers[name] for name in ("content-type", "www-authenticate") if name in response.headers}
    return response.status_code, body, kept


def test_both_doors_answer_every_case_alike(
    make_settings: Callable[..., Settings], example: dict[str, Any], api_keys: tuple[str, ...], route_calls: list[str]
) -> None:
    answers: dict[bool, list[tuple[int, Any, dict[str, str]]]] = {}
    for fast_door in (True, False):
        route_calls.clear()
        with TestClient(create_app(make_settings(fast_door=fast_door))) as client:
            answers[fast_door] = []
            for path, body, headers in _cases(example, api_keys[0]):
                if isinstance(body, bytes):
                    response = client.post(path, content=body, headers={**headers, "content-type": "application/json"})
                else:
                    response = client.post(path, json=body, headers=headers)
                assert response.headers["x-request-id"] == response.json()["request_id"]
                answers[fast_door].append(_comparable(response))
        # The lean door answers the scoring paths itself; without it, the routes answer them all.
        assert route_calls == ([] if fast_door else [path for path, _, _ in _cases(example, api_keys[0])])
    assert answers[True] == answers[False]
    assert [status for status, _, _ in answers[True]] == [200, 401, 401, 422, 422, 413, 200, 422]


def test_the_record_is_written_before_the_answer_and_the_score_metrics_after_it(
    app: Any, example: dict[str, Any], auth: dict[str, str], log_dir: Any, read_records: Callable[..., Any]
) -> None:
    """Both doors: when the answer's body goes out, its decision record is already on disk (what a
    SIGKILL leaves) and the score metrics are not counted yet; once the request is done, they are."""
    body = orjson.dumps(example)
    seen: list[tuple[int, float]] = []

    def refusals_and_acceptances() -> float:
        registry, version = app.state.metrics.registry, app.state.loaded.service.model_version
        return sum(
            registry.get_sample_value("predictions_total", {"model_version": version, "decision": d}) or 0.0
            for d in ("accepted", "refused")
        )

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            seen.append((len(read_records(log_dir)), refusals_and_acceptances()))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-api-key", auth["x-api-key"].encode()),
        ],
    }
    with TestClient(app):
        before = refusals_and_acceptances()
        asyncio.run(app(scope, receive, send))
        assert seen == [(1, before)]
        assert refusals_and_acceptances() == before + 1
