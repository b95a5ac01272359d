"""Open endpoints: service information, probes, example, metrics and the offline docs."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from contract.metadata import ModelMetadata
from inference.app import create_app
from inference.settings import Settings


def test_root_describes_service_and_model(client: TestClient, metadata: ModelMetadata) -> None:
    info = client.get("/").json()
    assert info["service"] == "credit-scoring-api"
    assert info["ready"] is True
    assert info["model"] == {
        "name": metadata.model_name,
        "version": metadata.model_version,
        "artifact_sha256": metadata.artifact_sha256,
        "mlflow_run_id": metadata.mlflow_run_id,
        "threshold": metadata.threshold,
        "created_at": metadata.created_at,
        "trained_on": metadata.training_data,
        "inputs": metadata.model_inputs,
        "protected_attributes": ["CODE_GENDER"],
        "metrics": metadata.metrics,
        "fairness": metadata.fairness,
        "reasons": True,
    }
    model = info["model"]
    assert "CODE_GENDER" not in model["inputs"] and len(model["inputs"]) == 119
    assert model["trained_on"]["kind"] == "synthetic" and model["trained_on"]["seed"] == 42
    assert model["trained_on"]["trained_at"]
    assert len(model["artifact_sha256"]) == 64
    assert {"groups", "four_fifths", "cost_of_dropping", "proxy"} <= set(model["fairness"])
    assert info["limits"]["max_batch_size"] == 1000


def test_readiness_follows_the_model(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    before = TestClient(app)  # lifespan not run: nothing loaded
    assert before.get("/health").status_code == 200
    assert before.get("/ready").status_code == 503
    assert before.get("/ready").json()["error"] == "model_not_ready"
    assert before.get("/").json()["ready"] is False
    with TestClient(app) as running:
        ready = running.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "model_version": app.state.loaded.service.model_version}
        assert running.get("/health").json() == {"status": "ok", "git_sha": "unknown"}
    assert before.get("/ready").status_code == 503  # after shutdown: not ready again
    assert before.get("/health").status_code == 200


def test_health_reports_the_commit(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(git_sha="0123abc"))) as client:
        assert client.get("/health").json() == {"status": "ok", "git_sha": "0123abc"}


def test_example_is_a_scorable_applicant(client: TestClient, auth: dict[str, str]) -> None:
    example = client.get("/example")
    assert example.status_code == 200
    assert len(example.json()) == 120
    assert (
        client.post(
            "/predict", content=example.content, headers={**auth, "content-type": "application/json"}
        ).status_code
        == 200
    )


def _samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_count_requests_latency_decisions_and_scores(
    client: TestClient, auth: dict[str, str], example: dict
) -> None:
    version = client.app.state.loaded.service.model_version  # type: ignore[attr-defined]
    for _ in range(3):
        client.post("/predict", json=example, headers=auth)
    client.post("/predict/batch", json={"applicants": [example] * 4}, headers=auth)
    client.post("/predict", json=example)
    client.post("/predict", json={**example, "AMT_INCOME_TOTAL": -1}, headers=auth)
    for _ in range(5):
        client.get("/health")
        client.get("/ready")
    samples = _samples(client)

    def requests(endpoint: str, status: str) -> float:
        return _value(samples, "http_requests_total", endpoint=endpoint, method="POST", status=status)

    assert requests("/predict", "200") == 3
    assert requests("/predict/batch", "200") == 1
    assert requests("/predict", "401") == 1
    assert requests("/predict", "422") == 1
    assert _value(samples, "http_request_duration_seconds_count", endpoint="/predict") == 5
    assert _value(samples, "model_inference_duration_seconds_count", model_version=version, endpoint="/predict") == 3
    assert (
        _value(samples, "model_inference_duration_seconds_count", model_version=version, endpoint="/predict/batch") == 1
    )
    decisions = sum(
        _value(samples, "predictions_total", model_version=version, decision=d) for d in ("accepted", "refused")
    )
    assert decisions == 7
    assert _value(samples, "prediction_probability_count", model_version=version) == 7
    assert _value(samples, "prediction_batch_size_sum", model_version=version, endpoint="/predict/batch") == 4
    assert _value(samples, "decision_records_written_total") == 3 + 4 + 1 + 1  # 3 singles, a batch of 4, 401, 422
    assert not [key for key in samples if key[0] == "decision_records_dropped_total"]
    info = [key for key in samples if key[0] == "model_info"]
    assert info and dict(info[0][1])["model_version"] == version
    endpoints = {dict(labels).get("endpoint") for _, labels in samples}
    assert not endpoints & {"/health", "/ready", "/metrics"}  # probes and scrapes are not counted


def test_metrics_of_two_apps_do_not_collide(make_settings: Callable[..., Settings]) -> None:
    first, second = create_app(make_settings()), create_app(make_settings())
    assert first.state.metrics.registry is not second.state.metrics.registry


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_and_redoc_use_only_local_assets(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assets = _local_assets(page.text)
        assert assets, path
        for asset in assets:
            assert asset.startswith("/"), f"{path} loads {asset} from elsewhere"
            assert client.get(asset).status_code == 200, asset
        assert "cdn." not in page.text and "fonts.googleapis" not in page.text


def test_openapi_before_start_up_shows_a_generic_body(app: FastAPI) -> None:
    document = TestClient(app).get("/openapi.json").json()  # no lifespan: no artifact yet
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["type"] == "object"
    assert "Applicant" not in document["components"]["schemas"]


def test_the_examples_are_a_typical_accepted_and_a_typical_refused_applicant(
    client: TestClient, auth: dict[str, str]
) -> None:
    accepted = client.get("/example").json()
    refused = client.get("/example", params={"decision": "refused"}).json()
    assert client.post("/predict", json=accepted, headers=auth).json()["decision"] == "accepted"
    assert client.post("/predict", json=refused, headers=auth).json()["decision"] == "refused"
    assert client.get("/example", params={"decision": "maybe"}).status_code == 422
    document = client.get("/openapi.json").json()
    content = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert set(content["examples"]) == {"accepted", "refused"}
    for name, example in content["examples"].items():
        assert client.post("/predict", json=example["value"], headers=auth).json()["decision"] == name
    batch = document["paths"]["/predict/batch"]["post"]["requestBody"]["content"]["application/json"]
    decisions = [
        p["decision"]
        for p in client.post("/predict/batch", json=batch["examples"]["batch"]["value"], headers=auth).json()[
            "predictions"
        ]
    ]
    assert decisions[:2] == ["accepted", "refused"]
