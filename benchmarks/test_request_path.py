"""Where one request's CPU time goes, in-process (no socket), on the same held-out applicants.

Group `request-steps`: the hot path's steps one by one (validation straight from the JSON bytes,
or the FastAPI-default way through a dict; encoding; the ONNX call; the response bytes; the
prediction record's formatting, done off the request by the log's writer thread) and all of the
in-request steps chained (`hot-path`).
Group `asgi`: one POST /predict through the whole app (middleware, dependencies, validation,
scoring, response, prediction-log hand-off) for our service, its variants (benchmarks/variants.py)
and the no-op floor (benchmarks/noop_app.py), driven without uvicorn by benchmarks/asgi.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from benchmarks.asgi import AsgiDriver
from benchmarks.conftest import N_ROWS, TOLERANCE, Served, cycling
from contract.records import Decision
from contract.requests import build_request_models

KEY = "bench-key"


@pytest.fixture(scope="module")
def request_models(served: Served) -> Any:
    return build_request_models(served.spec, max_batch_size=1000)


def _steps(served: Served, request_models: Any) -> dict[str, Any]:
    scorer, encoder, bodies = served.scorer, served.scorer.encoder, served.bodies
    applicant_type = request_models.applicant
    validated = [request_models.parse_applicant(b).__dict__ for b in bodies]
    rows = [encoder.encode_one(v) for v in validated]
    threshold, version = scorer.threshold, scorer.metadata.model_version

    def respond(probability: float) -> bytes:
        prediction = int(probability >= threshold)
        return orjson.dumps(
            {
                "prediction": prediction,
                "probability": probability,
                "decision": ("accepted", "refused")[prediction],
                "threshold": threshold,
                "model_version": version,
                "request_id": "0123456789abcdef0123456789abcdef",
            }
        )

    def log_record(i: int) -> bytes:
        entry = Decision(
            ts=1.8e9,
            request_id="0123456789abcdef0123456789abcdef",
            endpoint="/predict",
            status=200,
            latency_s=0.001,
            model_version=version,
            model_latency_s=2e-5,
            threshold=threshold,
            inputs=(validated[i],),
            probabilities=[0.1],
            predictions=[1],
        )
        return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in entry.records())

    def hot_path(i: int) -> float:
        applicant = request_models.parse_applicant(bodies[i])
        probability = float(scorer.predict_proba(encoder.encode_one(applicant.__dict__))[0])
        respond(probability)
        return probability

    return {
        "validate-from-bytes": lambda i: request_models.parse_applicant(bodies[i]),
        "validate-via-dict": lambda i: applicant_type.model_validate(orjson.loads(bodies[i])),
        "encode": lambda i: encoder.encode_one(validated[i]),
        "ort": lambda i: scorer.predict_proba(rows[i]),
        "respond": lambda i: respond(0.123456789),
        "log-record": log_record,
        "hot-path": hot_path,
    }


STEPS = ["validate-from-bytes", "validate-via-dict", "encode", "ort", "respond", "log-record", "hot-path"]


@pytest.mark.parametrize("step", STEPS)
def test_request_steps(benchmark, served: Served, request_models: Any, step: str) -> None:
    benchmark.group = "request-steps"
    benchmark.extra_info.update(model=served.model.kind)
    row, result = benchmark(cycling(_steps(served, request_models)[step], N_ROWS))
    if step == "hot-path":
        assert abs(result - served.stored[row]) <= TOLERANCE


def test_validation_modes_agree(served: Served, request_models: Any) -> None:
    """The two ways of validating give the same applicant (strict mode holds for both here)."""
    for body in served.bodies[:100]:
        direct = request_models.parse_applicant(body)
        via_dict = request_models.applicant.model_validate(orjson.loads(body))
        assert direct == via_dict


@pytest.fixture(scope="module")
def apps(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, AsgiDriver]]:
    from benchmarks import noop_app, variants
    from inference.settings import Settings

    spec_path = tmp_path_factory.mktemp("noop") / "spec.json"
    spec_path.write_text(served.spec.to_json())
    saved = {k: os.environ.get(k) for k in ("API_KEY", "NOOP_SPEC_PATH")}
    os.environ.update(API_KEY=KEY, NOOP_SPEC_PATH=str(spec_path))
    logs = tmp_path_factory.mktemp("prediction-log")

    def settings(name: str) -> Settings:
        return Settings(api_key=KEY, model_path=served.model.artifact, prediction_log_dir=logs / name)  # type: ignore[arg-type]

    drivers: dict[str, AsgiDriver] = {}
    try:
        from inference.app import create_app

        drivers["service"] = AsgiDriver(create_app(settings("service"))).__enter__()
        for name in ("no-log", "deferred-log", "fast-path"):
            try:  # the swap is read at start-up, so it is undone as soon as the variant has started
                drivers[f"variant:{name}"] = AsgiDriver(variants.create_variant(name, settings(name))).__enter__()
            finally:
                variants.restore()
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


@pytest.mark.parametrize(
    "app_name", ["service", "variant:no-log", "variant:deferred-log", "variant:fast-path", "noop", "driver-only"]
)
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
