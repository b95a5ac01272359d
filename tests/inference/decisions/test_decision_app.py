"""The app's decision record (JSONL default): exactly one record per scored applicant or rejected
call, written before the answer, and never a reason to stop scoring."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from contract.metadata import ModelMetadata
from inference.app import create_app
from inference.settings import Settings

SCORED_KEYS = [
    "ts", "request_id", "endpoint", "status", "latency_ms", "model_latency_ms", "model_version",
    "batch_index", "batch_size", "application_id", "inputs", "probability", "prediction", "threshold",
]  # fmt: skip
REJECTED_KEYS = ["ts", "request_id", "endpoint", "status", "latency_ms", "model_version", "error", "error_fields"]

Records = Callable[[Path], list[dict[str, Any]]]


def _full(applicant: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: applicant.get(name) for name in names}


def test_every_request_leaves_exactly_its_records(
    make_settings: Callable[..., Settings],
    log_dir: Path,
    read_records: Records,
    example: dict[str, Any],
    api_keys: tuple[str, ...],
    metadata: ModelMetadata,
) -> None:
    auth = {"x-api-key": api_keys[0]}
    names = list(example)
    sparse = {k: v for k, v in example.items() if k not in ("EXT_SOURCE_1", "OWN_CAR_AGE")}
    applicants = [{**example, "EXT_SOURCE_2": round(0.01 * i, 3)} for i in range(1, 41)]
    app = create_app(make_settings(max_body_bytes=8 * 1024))
    responses: dict[str, tuple[int, Any]] = {}
    with TestClient(app) as client:

        def post(path: str, body: Any, headers: dict[str, str]) -> None:
            response = client.post(path, json=body, headers=headers)
            responses[response.headers["x-request-id"]] = (response.status_code, body)

        with ThreadPoolExecutor(max_workers=8) as pool:  # concurrent scoring calls
            for applicant in applicants:
                pool.submit(post, "/predict", applicant, auth)
        post("/predict", sparse, auth)
        post("/predict/batch", {"applicants": applicants[:3]}, auth)
        post("/predict", {**example, "AMT_INCOME_TOTAL": -1.0}, auth)  # 422
        post("/predict/batch", {"applicants": [example], "priority": "high"}, auth)  # 422: the envelope
        post("/predict", example, {"x-api-key": "wrong"})  # 401
        post("/predict", {**example, "padding": "x" * 9000}, auth)  # 413
        client.get("/predict")  # 405 on a scoring path: recorded too
        client.get("/")  # not a scoring endpoint: no record
        client.get("/health")
    # Each record was written before its answer: nothing to wait for.
    records = read_records(log_dir)
    assert len(list(log_dir.iterdir())) == 1
    assert len(records) == 40 + 1 + 3 + 4 + 1

    by_request: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_request.setdefault(record["request_id"], []).append(record)
    assert set(responses) <= set(by_request)

    for request_id, (status, body) in responses.items():
        found = by_request[request_id]
        if status == 200:
            sent = body["applicants"] if "applicants" in body else [body]
            assert [r["batch_index"] for r in found] == list(range(len(sent)))
            for record, applicant in zip(found, sent, strict=True):
                # A refused applicant's record keeps the reasons its answer gave; an accepted one has none.
                assert list(record) == SCORED_KEYS + (["reasons"] if record["prediction"] else [])
                if record["prediction"]:
                    assert record["reasons"] and all(r["contribution"] > 0 for r in record["reasons"])
                assert record["status"] == 200
                assert record["batch_size"] == len(sent)
                assert record["inputs"] == _full(applicant, names)  # missing fields as null
                assert record["prediction"] == int(record["probability"] >= record["threshold"])
                assert record["model_latency_ms"] <= record["latency_ms"]
                assert record["endpoint"] == ("/predict/batch" if "applicants" in body else "/predict")
        else:
            (record,) = found
            assert list(record) == REJECTED_KEYS
            assert record["status"] == status
            assert "inputs" not in record
    errors = {r["status"]: r for r in records if "error" in r and r["endpoint"] == "/predict"}
    assert errors[422]["error"] == "validation_error"
    assert errors[422]["error_fields"] == ["AMT_INCOME_TOTAL"]
    assert errors[401]["error"] == "unauthorized"
    assert errors[413]["error"] == "payload_too_large"
    assert errors[405]["error"] == "method_not_allowed"
    batch_error = next(r for r in records if r["endpoint"] == "/predict/batch" and r["status"] == 422)
    assert batch_error["error_fields"] == ["priority"]
    for record in records:
        ts = datetime.fromisoformat(record["ts"])
        assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert record["model_version"] == metadata.model_version
    scored_probabilities = {
        r["request_id"]: r["probability"] for r in records if r["endpoint"] == "/predict" and "probability" in r
    }
    assert len(scored_probabilities) == 41


def _metric(text: str, name: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise KeyError(name)


def test_unwritable_log_dir_does_not_stop_scoring(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    example: dict[str, Any],
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log directory should be")  # unwritable even for root
    app = create_app(make_settings(prediction_log_dir=blocker / "logs"))
    caplog.set_level(logging.INFO, logger="inference")
    with TestClient(app) as client:
        for _ in range(5):
            assert client.post("/predict", json=example, headers=auth).status_code == 200
        assert client.post("/predict/batch", json={"applicants": [example] * 3}, headers=auth).status_code == 200
        assert client.post("/predict", json={}, headers=auth).status_code == 422
    assert _metric(app.state.metrics.render().decode(), "decision_records_dropped_total") == 5 + 3 + 1
    reports = [r for r in caplog.records if r.name.startswith("inference.decisions")]
    assert len(reports) == 1  # reported once, not once per record
    assert reports[0].levelno == logging.ERROR
    assert "scoring continues" in reports[0].getMessage()


@pytest.mark.slow
def test_sigterm_under_load_leaves_no_200_without_its_record(
    serve: Callable, tmp_path: Path, read_records: Records, example: dict[str, Any], api_keys: tuple[str, ...]
) -> None:
    server = serve()
    auth = {"x-api-key": api_keys[1]}
    answered: list[tuple[int, str]] = []  # (status, request id) of every response a client received
    enough = threading.Event()

    def client_loop(worker: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            for i in range(10_000):
                body = {**example, "EXT_SOURCE_3": round(0.01 * ((worker * 7 + i) % 80 + 1), 3)}
                if i % 10 == 9:
                    body["AMT_INCOME_TOTAL"] = -1.0  # some rejected calls in the mix
                try:
                    response = http.post("/predict", json=body, headers=auth)
                except httpx.TransportError:
                    return  # the server has stopped accepting: done
                answered.append((response.status_code, response.headers["x-request-id"]))
                if len(answered) >= 150:
                    enough.set()

    threads = [threading.Thread(target=client_loop, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120)
    code = server.stop()  # SIGTERM while requests are in flight
    for thread in threads:
        thread.join(timeout=60)
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    records = read_records(tmp_path / "logs")
    recorded = {(r["status"], r["request_id"]) for r in records}
    assert set(answered) <= recorded  # no answer without its record
    assert len(records) == len(recorded)  # one record per request: no duplicates
    assert {status for status, _ in answered} == {200, 422}
    assert "stopped; decision records written out" in server.output()


def test_with_a_database_the_app_ships_every_record_and_never_shows_the_password(
    make_settings: Callable[..., Settings],
    database_url: str,
    example: dict[str, Any],
    auth: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import psycopg

    password = database_url.split(":")[2].split("@")[0]
    app = create_app(make_settings(database_url=database_url))
    caplog.set_level(logging.DEBUG)
    with TestClient(app) as client:
        ids = [client.post("/predict", json=example, headers=auth).headers["x-request-id"] for _ in range(20)]
        ids.append(client.post("/predict", json={}, headers=auth).headers["x-request-id"])  # 422
        shown = client.get("/").text + client.get("/metrics").text + client.get("/openapi.json").text
    with psycopg.connect(database_url) as connection:
        stored = [r[0] for r in connection.execute("SELECT request_id FROM decisions")]
    assert sorted(stored) == sorted(ids)  # shipped at shutdown at the latest, each once
    assert password not in shown + caplog.text
    assert "decision records: PostgreSQL postgresql://postgres@127.0.0.1:" in caplog.text
