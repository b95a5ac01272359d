"""What one request leaves behind for its metrics and prediction record.

The observing middleware creates a `RequestContext` per request; the endpoint fills in the
scores, the error handler the error; the middleware turns it into metrics and log records
when the response starts. One object, so no layer has to know about the others.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request

SCOPE_KEY = "credit_scoring.context"


class RequestContext:
    __slots__ = (
        "request_id",
        "started",
        "wall_started",
        "inputs",
        "probabilities",
        "predictions",
        "model_latency_s",
        "error",
        "error_fields",
    )

    def __init__(self, request_id: str, started: float, wall_started: float) -> None:
        self.request_id = request_id
        self.started = started  # perf_counter(), for latency
        self.wall_started = wall_started  # time.time(), for the record's timestamp
        self.inputs: Sequence[Mapping[str, Any]] = ()
        self.probabilities: list[float] = []
        self.predictions: list[int] = []
        self.model_latency_s: float | None = None
        self.error: str | None = None
        self.error_fields: list[str] = []

    def scored(
        self,
        inputs: Sequence[Mapping[str, Any]],
        probabilities: list[float],
        predictions: list[int],
        model_latency_s: float,
    ) -> None:
        self.inputs = inputs
        self.probabilities = probabilities
        self.predictions = predictions
        self.model_latency_s = model_latency_s

    def failed(self, error: str, error_fields: list[str]) -> None:
        self.error = error
        self.error_fields = error_fields


def context_of(request: Request) -> RequestContext | None:
    """The request's context (None outside the middleware, e.g. a bare route test)."""
    return request.scope.get(SCOPE_KEY)
