"""The fast path answers valid single predictions itself and leaves every other case to the route."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

import inference.routes.scoring as scoring


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the FastAPI route's body reads: each one means the route answered."""
    calls: list[int] = []
    real_read_body = scoring.read_body

    async def counting_read_body(request, limit):  # type: ignore[no-untyped-def]
        calls.append(limit)
        return await real_read_body(request, limit)

    monkeypatch.setattr(scoring, "read_body", counting_read_body)
    return calls


def test_valid_prediction_skips_the_route_with_the_same_answer(
    client: TestClient, auth: dict[str, str], example: dict[str, Any], route_calls: list[int]
) -> None:
    fast = client.post("/predict", json=example, headers=auth)
    assert fast.status_code == 200 and route_calls == []
    batch = client.post("/predict/batch", json={"applicants": [example]}, headers=auth)
    assert route_calls  # the batch endpoint always goes through the route
    assert fast.json()["probability"] == batch.json()["predictions"][0]["probability"]
    assert set(fast.json()) == {"prediction", "probability", "decision", "threshold", "model_version", "request_id"}
    assert fast.json()["request_id"] == fast.headers["x-request-id"]


def test_invalid_prediction_falls_back_to_the_route(
    client: TestClient, auth: dict[str, str], example: dict[str, Any], route_calls: list[int]
) -> None:
    response = client.post("/predict", json={**example, "AMT_INCOME_TOTAL": -1}, headers=auth)
    assert response.status_code == 422 and len(route_calls) == 1  # body replayed to the route
    assert response.json()["details"][0]["field"] == "AMT_INCOME_TOTAL"
    unauthorized = client.post("/predict", json=example, headers={"x-api-key": "wrong"})
    assert unauthorized.status_code == 401
