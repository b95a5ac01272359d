"""One error family, one handler, one JSON shape.

Every refusal the service makes is a `ServiceError` named by its condition and carrying its
status. Framework errors (unknown path, wrong method, FastAPI's own validation) and
unexpected exceptions go through the same handler, so a client always gets:

    {"error": "validation_error", "message": "...", "request_id": "...",
     "details": [{"field": "AMT_INCOME_TOTAL", "problem": "Input should be ..."}]}

Error messages never carry input values or keys: they end up in logs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from contract.requests import RequestInvalid
from inference.context import request_id_of

logger = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)

    field: str
    """Where the problem is: a field name, `applicants.3.AMT_INCOME_TOTAL` in a batch, or `body`."""
    problem: str
    """What is wrong with it."""


class ErrorResponse(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    error: str
    """The condition, stable for programs: validation_error, unauthorized, payload_too_large, ..."""
    message: str
    """A short explanation for humans."""
    request_id: str | None = None
    """The request's id (also in the x-request-id header and the prediction log)."""
    details: list[ErrorDetail] | None = None
    """One entry per invalid field (validation errors only)."""


class ServiceError(Exception):
    """A refusal by the service; subclasses name the condition and set its status."""

    status_code: int = 500
    kind: str = "internal_error"

    def __init__(
        self,
        message: str,
        details: Sequence[ErrorDetail] = (),
        headers: Mapping[str, str] | None = None,
        status_code: int | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.headers = dict(headers or {})
        if status_code is not None:
            self.status_code = status_code
        if kind is not None:
            self.kind = kind

    def field_names(self) -> list[str]:
        """The feature names the error is about, for the decision record (no batch positions)."""
        names = (d.field.rsplit(".", 1)[-1] for d in self.details)
        return [name for name in dict.fromkeys(names) if name != "body"]


class InvalidInput(ServiceError):
    status_code = 422
    kind = "validation_error"

    @classmethod
    def from_problems(cls, invalid: RequestInvalid) -> InvalidInput:
        return cls(str(invalid), [ErrorDetail(field=p.field, problem=p.problem) for p in invalid.problems])


class Unauthorized(ServiceError):
    status_code = 401
    kind = "unauthorized"

    def __init__(self, message: str, scheme: str = "APIKey") -> None:
        challenge = 'APIKey realm="credit-scoring-api", header="x-api-key"' if scheme == "APIKey" else scheme
        super().__init__(message, headers={"WWW-Authenticate": challenge})


class Forbidden(ServiceError):
    status_code = 403
    kind = "forbidden"


class TooManyAttempts(ServiceError):
    status_code = 429
    kind = "too_many_attempts"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"Too many invalid API keys from this address; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class PayloadTooLarge(ServiceError):
    status_code = 413
    kind = "payload_too_large"


class ClientDisconnected(ServiceError):
    status_code = 400
    kind = "client_disconnected"


class ModelNotReady(ServiceError):
    status_code = 503
    kind = "model_not_ready"


class NotFound(ServiceError):
    status_code = 404
    kind = "not_found"


class MethodNotAllowed(ServiceError):
    status_code = 405
    kind = "method_not_allowed"


_BY_STATUS: dict[int, type[ServiceError]] = {cls.status_code: cls for cls in (NotFound, MethodNotAllowed)}


def as_service_error(exc: Exception) -> ServiceError:
    """Map any exception reaching the handler into the family."""
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, RequestInvalid):
        return InvalidInput.from_problems(exc)
    if isinstance(exc, RequestValidationError):
        return InvalidInput.from_problems(RequestInvalid.from_errors(_strip_body_prefix(exc.errors())))
    if isinstance(exc, ValidationError):
        return InvalidInput.from_problems(RequestInvalid.from_validation_error(exc))
    if isinstance(exc, HTTPException):
        cls = _BY_STATUS.get(exc.status_code)
        if cls is not None:
            return cls(str(exc.detail), headers=exc.headers)
        return ServiceError(str(exc.detail), headers=exc.headers, status_code=exc.status_code, kind="http_error")
    return ServiceError("Internal error; the request id identifies it in the service log")


def _strip_body_prefix(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # FastAPI prefixes body fields with "body"; the client only knows its own field names.
    return [{**e, "loc": tuple(e["loc"][1:]) if e["loc"][:1] == ("body",) else e["loc"]} for e in errors]


def error_body(error: ServiceError, request_id: str | None) -> bytes:
    """The JSON body of an error answer, the one shape for every door and endpoint."""
    body = ErrorResponse(error=error.kind, message=error.message, request_id=request_id, details=error.details or None)
    return orjson.dumps(body.model_dump(exclude_none=True))


async def handle_error(request: Request, exc: Exception) -> Response:
    """FastAPI's handler for everything outside the scoring service (404, 405, /ready's 503, 500)."""
    error = as_service_error(exc)
    request_id = request_id_of(request.scope)
    if error.status_code >= 500 and not isinstance(exc, ServiceError):
        logger.error("unexpected %s on %s (request %s)", type(exc).__name__, request.url.path, request_id or "-")
    return Response(
        error_body(error, request_id),
        status_code=error.status_code,
        headers=error.headers,
        media_type="application/json",
    )
