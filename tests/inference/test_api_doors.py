"""Both doors (the lean ASGI door and the FastAPI routes) are answered by the one scoring service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
