"""POST /outcomes: loan outcomes coming back, stored beside the decisions (never on the scoring path).

The key must be of the `outcomes` scope (OUTCOME_API_KEY): a scoring key gets 403, an unknown
one 401, a guessing address 429, all in the one error shape.

The answer has one result per item, in order: `stored`, `duplicate` (the same outcome again:
stored once), `unknown` (no scored decision has that id), `ambiguous` (a batch's request id),
or `conflict` (a contradicting outcome is already stored). Status 200 when no item conflicts;
409 when one does, with the error shape naming the conflicting ids in `details` and the same
per-item `results`: the other items of the call are stored all the same (each item is
idempotent, so the client can fix the conflicting ones and resend the whole call).
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Request, Security
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from contract.outcomes import ItemResult, OutcomeBatch, OutcomeStoreError, Status
from contract.requests import RequestInvalid
from inference.body import read_limited
from inference.context import request_id_of
from inference.errors import ErrorDetail, ErrorResponse, InvalidInput, ModelNotReady, ServiceError, error_body
from inference.outcomes import outcome_store_of
from inference.security import api_key_header
from inference.state import loaded_of

OUTCOMES_PATH = "/outcomes"
OUTCOMES_SCOPE = "outcomes"
NO_STORE = {"cache-control": "no-store"}

ApiKey = Annotated[str | None, Security(api_key_header)]


class OutcomeResult(BaseModel):
    application_id: str | None = None
    request_id: str | None = None
    status: Status
    message: str | None = None


class OutcomesResponse(BaseModel):
    request_id: str | None
    counts: dict[str, int]
    """Items per status."""
    results: list[OutcomeResult]
    """One per item, in the order sent."""


class Conflict(ServiceError):
    status_code = 409
    kind = "conflict"


def _inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its `$defs` inlined (the body is read by hand, so FastAPI does
    not add the models to the document's components)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


router = APIRouter(tags=["outcomes"])


@router.post(
    OUTCOMES_PATH,
    summary="Report loan outcomes (OUTCOME_API_KEY)",
    response_model=None,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline_schema(OutcomeBatch)}},
        }
    },
    responses={
        200: {"model": OutcomesResponse, "description": "One result per outcome"},
        401: {"model": ErrorResponse, "description": "Missing or invalid key"},
        403: {"model": ErrorResponse, "description": "A key of another scope (a scoring key)"},
        409: {"model": ErrorResponse, "description": "A contradicting outcome is stored for an id (named)"},
        422: {"model": ErrorResponse, "description": "Invalid body: each field and its problem"},
    },
)
async def post_outcomes(request: Request, api_key: ApiKey) -> Response:
    """Whether each applicant defaulted, named by `application_id` (or the `request_id` of a
    /predict call). Idempotent: the same outcome twice is stored once."""
    request_id = request_id_of(request.scope)
    try:
        loaded = loaded_of(request.app)
        if loaded is None:
            raise ModelNotReady("The service is starting or stopping")
        address = request.client.host if request.client else None
        loaded.service.keys.require(OUTCOMES_SCOPE, api_key, address)
        limit = loaded.settings.max_batch_body_bytes  # 10,000 outcomes are about 1 MB
        body = await read_limited(request.stream(), request.headers.get("content-length"), limit)
        batch = _parse(body)
        store = outcome_store_of(request.app, loaded.settings)
        try:
            results = await run_in_threadpool(store.add, [item.outcome() for item in batch.outcomes])
        except OutcomeStoreError as exc:
            raise ServiceError(str(exc), status_code=503, kind="outcome_store_unavailable") from None
    except ServiceError as error:
        return _json(error.status_code, orjson.loads(error_body(error, request_id)), error.headers)
    return _answer(results, request_id)


def _parse(body: bytes) -> OutcomeBatch:
    try:
        return OutcomeBatch.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInput.from_problems(RequestInvalid.from_validation_error(exc)) from None


def _answer(results: list[ItemResult], request_id: str | None) -> Response:
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    payload: dict[str, Any] = {
        "request_id": request_id,
        "counts": counts,
        "results": [result.as_dict() for result in results],
    }
    conflicts = [(n, r) for n, r in enumerate(results) if r.status == "conflict"]
    if not conflicts:
        return _json(200, payload)
    names = ", ".join(f"{r.id_kind} {r.id}" for _, r in conflicts)
    error = Conflict(
        f"Contradicting outcome for {names} (the call's other items were handled as their results say)",
        [ErrorDetail(field=f"outcomes.{n}.defaulted", problem=r.message or "conflict") for n, r in conflicts],
    )
    return _json(409, {**orjson.loads(error_body(error, request_id)), **payload})


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={**(headers or {}), **NO_STORE},
    )
