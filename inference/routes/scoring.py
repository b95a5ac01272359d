"""POST /predict and POST /predict/batch: the hot path.

request bytes -> size check -> pydantic (straight from JSON, no intermediate dict) -> one
float32 row per applicant in spec order -> one session.run -> JSON bytes. The endpoints take
the raw `Request`, so FastAPI neither parses the body a first time nor resolves dependencies
beyond the API-key check (see `inference.runtime`); the request schema is still declared in the
OpenAPI document (see `inference.app`), so /docs shows it with its example.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from contract.names import BATCH_PATH, PREDICT_PATH
from contract.requests import APPLICANT_MODEL, BATCH_MODEL
from contract.scorer import Scorer
from inference.body import read_body
from inference.context import context_of
from inference.errors import ErrorResponse
from inference.runtime import ScoringRuntime, scoring_runtime
from inference.schemas import BatchPredictionResponse, PredictionResponse
from inference.security import require_api_key

_DECISIONS = ("accepted", "refused")


def _json_body(model_name: str) -> dict[str, Any]:
    # Filled in with the artifact's schema and example once the model is loaded.
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"title": model_name, "type": "object"}}},
        }
    }


router = APIRouter(
    tags=["scoring"],
    dependencies=[Depends(require_api_key)],
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid x-api-key"},
        413: {"model": ErrorResponse, "description": "Body larger than the configured limit"},
        422: {"model": ErrorResponse, "description": "Invalid applicant data: each field and its problem"},
        503: {"model": ErrorResponse, "description": "The model is not loaded (starting or stopping)"},
    },
)


@router.post(
    PREDICT_PATH,
    summary="Score one applicant",
    response_model=None,
    responses={200: {"model": PredictionResponse, "description": "The decision and its probability"}},
    openapi_extra=_json_body(APPLICANT_MODEL),
)
async def predict(request: Request) -> Response:
    """Default probability and decision (0 = accepted, 1 = refused) for one applicant's raw
    application fields. Absent or null optional fields are treated as missing, as in training."""
    runtime = scoring_runtime(request)
    body = await read_body(request, runtime.max_body_bytes)
    applicant = runtime.requests.parse_applicant(body)
    scores = _remember(request, score(runtime.scorer, (applicant.__dict__,)))
    return Response(prediction_payload(runtime, scores, _request_id(request)), media_type="application/json")


def prediction_payload(runtime: ScoringRuntime, scores: Scores, request_id: str | None) -> bytes:
    """The JSON answer for one scored applicant (shared with `inference.fast_path`)."""
    prediction = scores.predictions[0]
    return orjson.dumps(
        {
            "prediction": prediction,
            "probability": scores.probabilities[0],
            "decision": _DECISIONS[prediction],
            "threshold": runtime.threshold,
            "model_version": runtime.model_version,
            "request_id": request_id,
        }
    )


@router.post(
    BATCH_PATH,
    summary="Score several applicants in one model call",
    response_model=None,
    responses={200: {"model": BatchPredictionResponse, "description": "One result per applicant, in order"}},
    openapi_extra=_json_body(BATCH_MODEL),
)
async def predict_batch(request: Request) -> Response:
    """Scores up to MAX_BATCH_SIZE applicants (1000 by default; more: 422) in a single model
    call; `predictions[i]` is the result for `applicants[i]`."""
    runtime = scoring_runtime(request)
    body = await read_body(request, runtime.max_batch_body_bytes)
    # A full batch holds the GIL for tens of milliseconds (validation, encoding). In a worker
    # thread the event loop still gets its turn every switch interval (5 ms), so single-applicant
    # calls arriving meanwhile are slowed, not queued behind the whole batch.
    scores = _remember(request, await run_in_threadpool(_parse_and_score_batch, runtime, body))
    return _json(
        {
            "predictions": [
                {"prediction": d, "probability": p, "decision": _DECISIONS[d]}
                for p, d in zip(scores.probabilities, scores.predictions, strict=True)
            ],
            "threshold": runtime.threshold,
            "model_version": runtime.model_version,
            "request_id": _request_id(request),
        }
    )


class Scores(NamedTuple):
    inputs: Sequence[Mapping[str, Any]]
    probabilities: list[float]
    predictions: list[int]
    model_latency_s: float


def score(scorer: Scorer, applicants: Sequence[Mapping[str, Any]]) -> Scores:
    """Validated applicants -> float32 rows in spec order -> one model call -> decisions."""
    rows = scorer.encoder.encode_many(applicants)
    started = time.perf_counter()
    probabilities = scorer.predict_proba(rows)
    model_latency = time.perf_counter() - started
    as_floats: list[float] = probabilities.tolist()
    return Scores(applicants, as_floats, scorer.decide(as_floats), model_latency)


def _parse_and_score_batch(runtime: ScoringRuntime, body: bytes) -> Scores:
    applicants = runtime.requests.parse_batch(body)
    return score(runtime.scorer, [applicant.__dict__ for applicant in applicants])


def _remember(request: Request, scores: Scores) -> Scores:
    """Leave the scores to the middleware, for metrics and the prediction log."""
    context = context_of(request)
    if context is not None:
        context.scored(*scores)
    return scores


def _request_id(request: Request) -> str | None:
    context = context_of(request)
    return context.request_id if context is not None else None


def _json(content: dict[str, Any]) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")
