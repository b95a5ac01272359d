"""POST /predict and /predict/batch: results, parity with the exported scores, limits, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import contract.scorer
from contract.explain import Attributions
from contract.scorer import Scorer
from contract.spec import FeatureSpec
from inference.app import create_app
from inference.settings import Settings
from tests import response_contract


def _reference(spec: FeatureSpec, path: Path) -> tuple[list[dict[str, Any]], np.ndarray, list[int]]:
    import pandas as pd  # test-only: serving never imports pandas

    sample = pd.read_parquet(path)
    raw = sample[spec.names].astype(object)
    applicants = raw.where(raw.notna(), None).to_dict("records")
    return applicants, sample["probability"].to_numpy(), sample["prediction"].astype(int).tolist()


def test_predict_returns_decision_and_probability(client: TestClient, auth: dict[str, str], example: dict) -> None:
    response = client.post("/predict", json=example, headers=auth)
    assert response.status_code == 200
    body = response.json()
    scorer: Scorer = client.app.state.loaded.service.scorer  # type: ignore[attr-defined]
    expected = float(scorer.predict_proba(scorer.encoder.encode_one(example))[0])
    assert body["probability"] == expected
    assert body["prediction"] == int(expected >= scorer.threshold)
    assert body["decision"] == ("refused" if body["prediction"] else "accepted")
    assert body["threshold"] == scorer.threshold
    assert body["model_version"] == scorer.metadata.model_version
    assert body["request_id"] == response.headers["x-request-id"]


def test_api_scores_equal_the_exported_ones(
    client: TestClient, auth: dict[str, str], spec: FeatureSpec, reference_sample_path: Path
) -> None:
    applicants, probabilities, predictions = _reference(spec, reference_sample_path)
    batch = client.post("/predict/batch", json={"applicants": applicants[:1000]}, headers=auth)
    assert batch.status_code == 200, batch.text[:500]
    results = batch.json()["predictions"]
    n = len(results)
    # Export scored the sample with the serving session options: the same bits, not just close.
    assert [r["probability"] for r in results] == probabilities[:n].tolist()
    assert [r["prediction"] for r in results] == predictions[:n]
    for i in range(0, n, max(1, n // 25)):  # the single-row path too, on a spread of rows
        single = client.post("/predict", json=applicants[i], headers=auth).json()
        assert single["probability"] == results[i]["probability"]
        assert single["prediction"] == predictions[i]


def test_absent_and_null_optional_fields_score_alike(
    client: TestClient, auth: dict[str, str], spec: FeatureSpec
) -> None:
    required = {f.name: f.example for f in spec.features if not f.nullable}
    nulls = {**required, **{f.name: None for f in spec.features if f.nullable}}
    absent = client.post("/predict", json=required, headers=auth).json()
    null = client.post("/predict", json=nulls, headers=auth).json()
    assert absent["probability"] == null["probability"]


def test_batch_scores_in_one_model_call_and_keeps_order(
    client: TestClient, auth: dict[str, str], example: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    scorer: Scorer = client.app.state.loaded.service.scorer  # type: ignore[attr-defined]
    calls: list[int] = []
    original = scorer.predict_attributed

    def counted(rows: np.ndarray, every: bool = False) -> tuple[np.ndarray, Attributions | None]:
        calls.append(len(rows))
        return original(rows, every)

    monkeypatch.setattr(scorer, "predict_attributed", counted)
    applicants = [{**example, "EXT_SOURCE_2": round(0.05 + 0.1 * i, 2)} for i in range(8)]
    response = client.post("/predict/batch", json={"applicants": applicants}, headers=auth)
    assert response.status_code == 200
    assert calls == [8]
    singles = [client.post("/predict", json=a, headers=auth).json()["probability"] for a in applicants]
    assert [r["probability"] for r in response.json()["predictions"]] == singles
    assert len(set(singles)) > 1  # the order check means something


def test_model_is_loaded_once(
    make_settings: Callable[..., Settings], auth: dict[str, str], example: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions: list[object] = []
    loads: list[object] = []
    real_session, real_load = contract.scorer.ort.InferenceSession, Scorer.load

    def counting_session(*args: Any, **kwargs: Any) -> Any:
        sessions.append(args)
        return real_session(*args, **kwargs)

    def counting_load(self: Scorer) -> None:
        loads.append(self)
        real_load(self)

    monkeypatch.setattr(contract.scorer.ort, "InferenceSession", counting_session)
    monkeypatch.setattr(Scorer, "load", counting_load)
    with TestClient(create_app(make_settings())) as client:
        for _ in range(20):
            assert client.post("/predict", json=example, headers=auth).status_code == 200
        assert client.post("/predict/batch", json={"applicants": [example] * 5}, headers=auth).status_code == 200
    assert len(sessions) == 1
    assert len(loads) == 1


def test_batch_over_the_limit_is_refused(
    make_settings: Callable[..., Settings], auth: dict[str, str], example: dict
) -> None:
    with TestClient(create_app(make_settings(max_batch_size=3))) as client:
        assert client.post("/predict/batch", json={"applicants": [example] * 3}, headers=auth).status_code == 200
        response = client.post("/predict/batch", json={"applicants": [example] * 4}, headers=auth)
    assert response.status_code == 422
    assert response.json()["details"][0]["field"] == "applicants"


@pytest.fixture
def small_limits(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    settings = make_settings(max_body_bytes=8 * 1024, max_batch_body_bytes=16 * 1024)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(("path", "limit"), [("/predict", 8 * 1024), ("/predict/batch", 16 * 1024)])
def test_oversized_body_is_refused_before_parsing(
    small_limits: TestClient, auth: dict[str, str], path: str, limit: int
) -> None:
    body = b"{" + b" " * limit + b"}"  # valid JSON once parsed: only the size can refuse it
    response = small_limits.post(path, content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_oversized_chunked_body_is_refused(small_limits: TestClient, auth: dict[str, str]) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        yield b"{"
        for _ in range(64):
            yield b" " * 1024
        yield b"}"

    response = small_limits.post("/predict", content=chunks(), headers=auth)
    assert response.status_code == 413


def test_a_full_batch_fits_the_default_body_limit(client: TestClient, auth: dict[str, str], example: dict) -> None:
    settings: Settings = client.app.state.loaded.settings  # type: ignore[attr-defined]
    body = orjson.dumps({"applicants": [example] * settings.max_batch_size}, option=orjson.OPT_INDENT_2)
    assert len(body) < settings.max_batch_body_bytes
    assert len(orjson.dumps(example, option=orjson.OPT_INDENT_2)) < settings.max_body_bytes


def test_invalid_applicant_gets_422_naming_the_fields(client: TestClient, auth: dict[str, str], example: dict) -> None:
    body = {**example, "AMT_INCOME_TOTAL": -1.0, "NAME_CONTRACT_TYPE": "Mortgage", "UNKNOWN": 1}
    response = client.post("/predict", json=body, headers=auth)
    assert response.status_code == 422
    error = response.json()
    assert error["error"] == "validation_error"
    assert error["request_id"] == response.headers["x-request-id"]
    assert {d["field"] for d in error["details"]} == {"AMT_INCOME_TOTAL", "NAME_CONTRACT_TYPE", "UNKNOWN"}
    assert "-1.0" not in response.text  # the input value is not echoed (it would reach logs)


GARBAGE: list[bytes] = [
    b"",
    b"not json",
    b"[1, 2, 3]",
    b'{"applicants": "x"}',
    b"\xff\xfe\x00",
    b'{"AMT_INCOME_TOTAL": 1e999999}',
    b'{"AMT_INCOME_TOTAL": NaN}',
    b'{"CNT_CHILDREN": 123456789012345678901234567890}',
    b'{"NAME_CONTRACT_TYPE": {"$ne": 1}}',
    b"{" * 2000,
]


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_never_a_500_on_bad_input(client: TestClient, auth: dict[str, str], path: str) -> None:
    for body in GARBAGE:
        response = client.post(path, content=body, headers={**auth, "content-type": "application/json"})
        assert response.status_code == 422, (body[:40], response.text[:200])
        assert response.json()["error"] == "validation_error"


def test_wrong_method_and_unknown_path_share_the_error_shape(client: TestClient) -> None:
    assert client.get("/predict").json()["error"] == "method_not_allowed"
    assert client.get("/nowhere").json()["error"] == "not_found"


def test_every_request_gets_its_own_id(client: TestClient, auth: dict[str, str], example: dict) -> None:
    ids = {
        client.post("/predict", json=example, headers={**auth, "x-request-id": "same-id"}).headers["x-request-id"]
        for _ in range(5)
    }
    assert len(ids) == 5 and all(len(i) == 32 for i in ids)  # a caller's id never merges log records


def test_scoring_before_start_up_is_503(app: FastAPI, auth: dict[str, str], example: dict) -> None:
    client = TestClient(app)  # no `with`: the lifespan has not run, nothing is loaded
    response = client.post("/predict", json=example, headers=auth)
    assert response.status_code == 503
    assert response.json()["error"] == "model_not_ready"


def test_an_unexpected_failure_is_a_500_in_the_error_shape_and_recorded(
    make_settings: Callable[..., Settings],
    auth: dict[str, str],
    example: dict,
    log_dir: Path,
    read_records: Callable[[Path], list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_app(make_settings())
    with TestClient(app, raise_server_exceptions=False) as client:

        def broken(rows: np.ndarray) -> tuple[np.ndarray, Attributions | None]:
            raise RuntimeError("onnxruntime fell over")

        monkeypatch.setattr(app.state.loaded.service.scorer, "predict_attributed", broken)
        response = client.post("/predict", json=example, headers=auth)
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "internal_error"
        assert "fell over" not in response.text  # internals stay in the service log
        metrics = client.get("/metrics").text
    assert 'http_requests_total{endpoint="/predict",method="POST",status="500"} 1.0' in metrics
    (record,) = read_records(log_dir)
    assert record["status"] == 500 and record["error"] == "internal_error"
    assert record["request_id"] == body["request_id"]


def test_a_failure_in_the_framework_is_a_500_with_its_request_id_and_counted(
    make_settings: Callable[..., Settings],
) -> None:
    """Outside the scoring service (any other route): the framework's error middleware answers,
    inside the request-id and metrics middleware, so the 500 keeps its id and is counted."""
    app = create_app(make_settings())

    async def broken_route() -> None:
        raise RuntimeError("a bug in a route")

    app.add_api_route("/broken", broken_route)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken")
        metrics = client.get("/metrics").text
    assert response.status_code == 500
    assert response.json()["error"] == "internal_error"
    assert "a bug" not in response.text
    assert response.headers["x-request-id"] == response.json()["request_id"]
    assert 'http_requests_total{endpoint="/broken",method="GET",status="500"} 1.0' in metrics


def test_a_bad_applicant_does_not_sink_its_batch(
    app: FastAPI,
    auth: dict[str, str],
    example: dict,
    log_dir: Path,
    read_records: Callable[[Path], list[dict[str, Any]]],
) -> None:
    bad = {**example, "AMT_INCOME_TOTAL": -1.0, "CODE_GENDER": "?"}
    body = {"applicants": [example, bad, {**example, "CNT_CHILDREN": 2.0}]}
    with TestClient(app) as client:
        response_contract.install(client, app)
        response = client.post("/predict/batch", json=body, headers=auth)
        single = client.post("/predict", json=example, headers=auth).json()
    assert response.status_code == 200
    first, second, third = response.json()["predictions"]
    assert first["probability"] == single["probability"] and third["decision"] in ("accepted", "refused")
    assert second["error"] == "validation_error"
    assert {d["field"] for d in second["details"]} == {"AMT_INCOME_TOTAL", "CODE_GENDER"}
    records = [r for r in read_records(log_dir) if r["request_id"] == response.headers["x-request-id"]]
    assert sorted(r["batch_index"] for r in records) == [0, 1, 2]
    refused = next(r for r in records if r["batch_index"] == 1)
    assert refused["error"] == "validation_error" and "inputs" not in refused
    assert set(refused["error_fields"]) == {"AMT_INCOME_TOTAL", "CODE_GENDER"}
    assert all(r["batch_size"] == 3 for r in records)


def test_a_batch_of_only_bad_applicants_answers_each(client: TestClient, auth: dict[str, str], example: dict) -> None:
    response = client.post("/predict/batch", json={"applicants": [{**example, "AMT_CREDIT": None}] * 2}, headers=auth)
    assert response.status_code == 200
    assert [p["details"][0]["field"] for p in response.json()["predictions"]] == ["AMT_CREDIT", "AMT_CREDIT"]


def test_one_applicant_posted_to_the_batch_endpoint_is_told_so(
    client: TestClient, auth: dict[str, str], example: dict
) -> None:
    response = client.post("/predict/batch", json=example, headers=auth)
    assert response.status_code == 422
    (detail,) = response.json()["details"]
    assert detail["field"] == "body" and "/predict" in detail["problem"]


def test_the_application_id_is_echoed_and_recorded_but_never_scored(
    app: FastAPI,
    auth: dict[str, str],
    example: dict,
    log_dir: Path,
    read_records: Callable[[Path], list[dict[str, Any]]],
) -> None:
    with TestClient(app) as client:
        response_contract.install(client, app)
        plain = client.post("/predict", json=example, headers=auth).json()
        tagged = client.post("/predict", json={**example, "application_id": "CE-1"}, headers=auth).json()
        batch = client.post(
            "/predict/batch", json={"applicants": [{**example, "application_id": "CE-2"}, example]}, headers=auth
        ).json()
    assert plain["application_id"] is None and tagged["application_id"] == "CE-1"
    assert tagged["probability"] == plain["probability"]  # not a model input
    assert [p["application_id"] for p in batch["predictions"]] == ["CE-2", None]
    by_request = {r["request_id"]: r for r in read_records(log_dir) if r["batch_index"] == 0}
    recorded = by_request[tagged["request_id"]]
    assert recorded["application_id"] == "CE-1" and "application_id" not in recorded["inputs"]
    assert by_request[batch["request_id"]]["application_id"] == "CE-2"
