"""A public endpoint that holds up: failed-key throttling, private answers, edge headers, the
metrics key and CORS only when configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from inference.app import create_app
from inference.settings import Settings
from inference.throttle import FailedKeyThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _client(settings: Settings, address: str) -> TestClient:
    return TestClient(create_app(settings), client=(address, 50000))


# The throttle on its own (a fake clock: no sleeping).


def test_the_throttle_counts_per_address_and_forgets_after_the_window() -> None:
    clock = FakeClock()
    throttle = FailedKeyThrottle(limit=3, window_s=60, max_clients=100, clock=clock)
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") is None
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 60
    assert throttle.retry_after("10.0.0.2") is None  # another address is not affected
    clock.now += 59.2
    assert throttle.retry_after("10.0.0.1") == 1  # rounded up, never 0
    clock.now += 1
    assert throttle.retry_after("10.0.0.1") is None and len(throttle) == 0  # recovered, forgotten


def test_failures_in_an_old_window_do_not_add_up() -> None:
    clock = FakeClock()
    throttle = FailedKeyThrottle(limit=3, window_s=10, max_clients=100, clock=clock)
    for _ in range(2):
        throttle.failed("a")
    clock.now += 11
    for _ in range(2):
        throttle.failed("a")
    assert throttle.retry_after("a") is None


def test_the_throttle_memory_is_bounded_whatever_the_number_of_addresses() -> None:
    throttle = FailedKeyThrottle(limit=2, window_s=60, max_clients=1000, clock=FakeClock())
    for i in range(50_000):
        throttle.failed(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle) == 1000
    throttle.failed("10.0.195.79")  # among the last 1000 (index 49999 -> kept): two failures now
    assert throttle.retry_after("10.0.195.79") == 60


# Through the app.


def test_key_guessing_gets_429_and_valid_keys_elsewhere_are_unaffected(
    make_settings: Callable[..., Settings], example: dict[str, Any], api_keys: tuple[str, ...]
) -> None:
    settings = make_settings(key_failure_limit=3)
    app = create_app(settings)
    guesser = TestClient(app, client=("203.0.113.7", 40000))
    desk = TestClient(app, client=("198.51.100.2", 40001))
    with guesser, desk:
        statuses = [guesser.post("/predict", json=example, headers={"x-api-key": f"guess-{i}"}) for i in range(5)]
        assert [r.status_code for r in statuses] == [401, 401, 401, 429, 429]
        throttled = statuses[-1]
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert throttled.json()["error"] == "too_many_attempts"
        # Even the right key waits out the window from that address (no guess can be confirmed) ...
        assert guesser.post("/predict", json=example, headers={"x-api-key": api_keys[0]}).status_code == 429
        # ... while the desk, elsewhere, is served.
        assert desk.post("/predict", json=example, headers={"x-api-key": api_keys[0]}).status_code == 200
        metrics = desk.get("/metrics").text
    assert "api_key_failures_total 3.0" in metrics
    assert "api_key_throttled_total 3.0" in metrics


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("/predict", "example", "good"),
        ("/predict", "example", "bad"),
        ("/predict", {"AMT_INCOME_TOTAL": -1}, "good"),
        ("/predict/batch", "batch", "good"),
    ],
)
def test_scoring_answers_are_private(
    client: TestClient,
    example: dict[str, Any],
    api_keys: tuple[str, ...],
    path: str,
    body: Any,
    key: str,
) -> None:
    named = {"example": example, "batch": {"applicants": [example]}}
    payload = named[body] if isinstance(body, str) else body
    response = client.post(path, json=payload, headers={"x-api-key": api_keys[0] if key == "good" else "nope"})
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "server" not in response.headers


@pytest.mark.parametrize("path", ["/", "/health", "/ready", "/metrics", "/example", "/openapi.json", "/nowhere"])
def test_every_answer_says_nosniff(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_docs_pages_carry_a_content_security_policy(client: TestClient, path: str) -> None:
    policy = client.get(path).headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "http" not in policy  # no outside host is allowed


def test_the_real_server_sends_no_server_header(serve: Callable[..., Any]) -> None:
    server = serve(entry_point=True)
    response = httpx.get(f"{server.base_url}/health")
    assert response.status_code == 200 and "server" not in response.headers


def test_metrics_need_their_key_when_one_is_set(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(metrics_api_key="scrape-secret-123"))) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 401
        refused = client.get("/metrics", headers={"x-api-key": "scrape-secret-123"})
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "scrape-secret-123" not in refused.text
        allowed = client.get("/metrics", headers={"authorization": "Bearer scrape-secret-123"})
        assert allowed.status_code == 200 and "http_requests_total" in allowed.text


def test_metrics_stay_open_without_a_key(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200


def test_cors_answers_only_the_listed_origins(make_settings: Callable[..., Settings]) -> None:
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "x-api-key"}
    with TestClient(create_app(make_settings(cors_origins=["https://desk.example.com"]))) as client:
        allowed = client.options("/predict", headers={**preflight, "origin": "https://desk.example.com"})
        assert allowed.headers["access-control-allow-origin"] == "https://desk.example.com"
        other = client.options("/predict", headers={**preflight, "origin": "https://evil.example.net"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_app(make_settings())) as client:
        response = client.get("/health", headers={"origin": "https://desk.example.com"})
        assert "access-control-allow-origin" not in response.headers
