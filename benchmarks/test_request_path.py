"""Where one request's CPU time goes, in-process (no socket), on the same held-out applicants.

Group `request-steps`: the scoring service's steps one by one (validation straight from the JSON
bytes, or the FastAPI-default way through a dict; encoding; the ONNX call; `ScoringService.score`;
the answer's bytes; the decision record's formatting) and `ScoringService.answer` whole (key
check, body, validation, scoring, answer, metrics, record hand-off), all from `inference.service`.
Group `asgi`: one POST /predict through the whole app, by the lean door and by the FastAPI door,
and through the no-op floor (benchmarks/noop_app.py), driven without uvicorn by benchmarks/asgi.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from benchmarks.asgi import AsgiDriver
from benchmarks.conftest import N_ROWS, TOLERANCE, Served, cycling
from benchmarks.inprocess import KEY, answer_now, build_service, scoring_request
from contract.names import PREDICT_PATH
from inference.context import RequestContext
from inference.service import ScoringService


@pytest.fixture(scope="module")
def service(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringService]:
    service = build_service(served.scorer, tmp_path_factory.mktemp("decisions"))
    yield service
    service.recorder.close(5.0)


def _steps(served: Served, service: ScoringService) -> dict[str, Any]:
    encoder, bodies, requests = served.scorer.encoder, served.bodies, service.requests
    validated = [requests.parse_applicant(b).__dict__ for b in bodies]
    rows = [encoder.encode_one(v) for v in validated]
    scores = [service.score((v,)) for v in validated]

    def log_record(i: int) -> bytes:
        context = RequestContext("0123456789abcdef0123456789abcdef", time.perf_counter(), 1.8e9)
        entry = service.decision(PREDICT_PATH, 200, context, scores[i])
        return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in entry.records())

    def answer(i: int) -> float:
        result = answer_now(service, scoring_request(bodies[i]))
        return float(orjson.loads(result.body)["probability"])

    return {
        "validate-from-bytes": lambda i: requests.parse_applicant(bodies[i]),
        "validate-via-dict": lambda i: requests.applicant.model_validate(orjson.loads(bodies[i])),
        "encode": lambda i: encoder.encode_one(validated[i]),
        "ort": lambda i: served.scorer.predict_proba(rows[i]),
        "score": lambda i: service.score((validated[i],)),
        "respond": lambda i: service.single_payload(scores[i], "0123456789abcdef0123456789abcdef"),
        "log-record": log_record,
        "service-answer": answer,
    }


STEPS = [
    "validate-from-bytes",
    "validate-via-dict",
    "encode",
    "ort",
    "score",
    "respond",
    "log-record",
    "service-answer",
]


@pytest.mark.parametrize("step", STEPS)
def test_request_steps(benchmark, served: Served, service: ScoringService, step: str) -> None:
    benchmark.group = "request-steps"
    benchmark.extra_info.update(model=served.model.kind)
    row, result = benchmark(cycling(_steps(served, service)[step], N_ROWS))
    if step == "service-answer":
        assert abs(result - served.stored[row]) <= TOLERANCE


def test_validation_modes_agree(served: Served, service: ScoringService) -> None:
    """The two ways of validating give the same applicant (strict mode holds for both here)."""
    for body in served.bodies[:100]:
        direct = service.requests.parse_applicant(body)
        via_dict = service.requests.applicant.model_validate(orjson.loads(body))
        assert direct == via_dict


@pytest.fixture(scope="module")
def apps(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AsgiDriver]]:
    from benchmarks import noop_app
    from inference.settings import Settings

    spec_path = tmp_path_factory.mktemp("noop") / "spec.json"
    spec_path.write_text(served.spec.to_json())
    saved = {k: os.environ.get(k) for k in ("API_KEY", "NOOP_SPEC_PATH")}
    os.environ.update(API_KEY=KEY, NOOP_SPEC_PATH=str(spec_path))
    logs = tmp_path_factory.mktemp("prediction-log")

    def settings(name: str, fast_door: bool) -> Settings:
        return Settings(  # type: ignore[call-arg]
            api_key=KEY, model_path=served.model.artifact, prediction_log_dir=logs / name, fast_door=fast_door
        )

    drivers: dict[str, AsgiDriver] = {}
    try:
        from inference.app import create_app

        drivers["service"] = AsgiDriver(create_app(settings("service", True))).__enter__()
        drivers["service-fastapi-door"] = AsgiDriver(create_app(settings("fastapi-door", False))).__enter__()
        drivers["noop"] = AsgiDriver(noop_app.create_app()).__enter__()
        yield drivers
    finally:
        for driver in drivers.values():
            driver.__exit__(None, None, None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.mark.parametrize("app_name", ["service", "service-fastapi-door", "noop", "driver-only"])
def test_asgi(benchmark, served: Served, apps: dict[str, AsgiDriver], app_name: str) -> None:
    """One request through the app; `driver-only` is the driver's own cost (subtract it)."""
    benchmark.group = "asgi"
    if app_name == "driver-only":
        benchmark(apps["noop"].nothing)
        return
    driver = apps[app_name]
    headers = [(b"content-type", b"application/json"), (b"x-api-key", KEY.encode())]
    bodies = served.bodies

    def call(i: int) -> tuple[int, bytes]:
        return driver.post("/predict", bodies[i], headers)

    row, (status, answer) = benchmark(cycling(call, N_ROWS))
    assert status == 200, answer
    if app_name != "noop":
        assert abs(orjson.loads(answer)["probability"] - served.stored[row]) <= TOLERANCE


@pytest.fixture(scope="module")
def without_reasons(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScoringService]:
    service = build_service(served.scorer, tmp_path_factory.mktemp("no-reasons"), reasons=False)
    yield service
    service.recorder.close(5.0)


@pytest.mark.parametrize("reasons", ["with-reasons", "without-reasons"])
def test_refused_answer(
    benchmark, served: Served, service: ScoringService, without_reasons: ScoringService, reasons: str
) -> None:
    """`ScoringService.answer` for refused applicants only: what their reasons cost (issue 11: <= 1.25x)."""
    benchmark.group = "refusal-reasons"
    chosen = service if reasons == "with-reasons" else without_reasons
    refused = [b for b, p in zip(served.bodies, served.stored, strict=True) if p >= service.threshold]
    assert refused

    def answer(i: int) -> dict[str, Any]:
        return orjson.loads(answer_now(chosen, scoring_request(refused[i])).body)  # type: ignore[no-any-return]

    _, result = benchmark(cycling(answer, len(refused)))
    assert result["decision"] == "refused" and (("reasons" in result) == (reasons == "with-reasons"))


@pytest.mark.parametrize("reasons", ["with-reasons", "without-reasons"])
def test_batch_of_1000(
    benchmark, served: Served, service: ScoringService, without_reasons: ScoringService, reasons: str
) -> None:
    """`ScoringService.score` on 1,000 validated applicants (about a third refused), with and without reasons."""
    benchmark.group = "refusal-reasons-batch-1000"
    chosen = service if reasons == "with-reasons" else without_reasons
    applicants = [dict(d) for d in (served.dicts * (1000 // len(served.dicts) + 1))[:1000]]
    scores = benchmark(lambda: chosen.score([dict(a) for a in applicants]))
    assert len(scores.probabilities) == 1000
