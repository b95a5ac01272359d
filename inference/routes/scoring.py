"""POST /predict and POST /predict/batch through FastAPI: the documented door.

These routes declare what /docs shows (the request schema, filled in from the artifact's spec
by `inference.app`; the responses; the x-api-key scheme). They answer with the same call as the
lean ASGI door (`inference.door`), which serves these paths by default; with FAST_DOOR=false,
they serve them. The key is only read here: the scoring service checks it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Security
from starlette.background import BackgroundTask
from starlette.responses import Response

from contract.names import BATCH_PATH, PREDICT_PATH
from contract.requests import APPLICANT_MODEL, BATCH_MODEL
from inference.body import read_limited
from inference.context import context_of, new_context
from inference.errors import ErrorResponse
from inference.schemas import BatchPredictionResponse, PredictionResponse
from inference.security import api_key_header
from inference.service import ScoringRequest, answer_scoring
from inference.state import loaded_of

ApiKey = Annotated[str | None, Security(api_key_header)]


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
async def predict(request: Request, api_key: ApiKey) -> Response:
    """Default probability and decision (0 = accepted, 1 = refused) for one applicant's raw
    application fields. Absent or null optional fields are treated as missing, as in training."""
    return await _answer(request, api_key)


@router.post(
    BATCH_PATH,
    summary="Score several applicants in one model call",
    response_model=None,
    responses={200: {"model": BatchPredictionResponse, "description": "One result per applicant, in order"}},
    openapi_extra=_json_body(BATCH_MODEL),
)
async def predict_batch(request: Request, api_key: ApiKey) -> Response:
    """Scores up to MAX_BATCH_SIZE applicants (1000 by default; more: 422) in a single model
    call; `predictions[i]` is the result for `applicants[i]`."""
    return await _answer(request, api_key)


async def _answer(request: Request, api_key: str | None) -> Response:
    declared_length = request.headers.get("content-length")

    async def read_body(limit: int) -> bytes:
        return await read_limited(request.stream(), declared_length, limit)

    loaded = loaded_of(request.app)
    scoring_request = ScoringRequest(
        path=request.scope["path"],
        method=request.method,
        api_key=api_key,
        client=request.client.host if request.client else None,
        query=request.scope.get("query_string", b""),
        read_body=read_body,
        context=context_of(request.scope) or new_context(),
    )
    answer = await answer_scoring(loaded.service if loaded is not None else None, scoring_request)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers}
    background = BackgroundTask(answer.after) if answer.after is not None else None
    return Response(answer.body, status_code=answer.status, headers=headers, background=background)
