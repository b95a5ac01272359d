"""Observing every request: request id, metrics and prediction records, in one place.

A pure ASGI middleware (no BaseHTTPMiddleware: it would copy the body and cost a task per
request). It notes the status and the latency when the response starts, then, once the
response is sent, counts the request and, for scoring endpoints, queues its prediction
record: the client does not wait for the bookkeeping. The record is queued before the request
is finished, and a graceful shutdown (SIGTERM) finishes every request before the lifespan
drains the log: no 200 without its record.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.records import Decision
from inference.context import SCOPE_KEY, RequestContext
from inference.metrics import Metrics
from inference.runtime import ScoringRuntime

REQUEST_ID_HEADER = b"x-request-id"


class ObservabilityMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        scored_paths: Collection[str],
        unobserved_paths: Collection[str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.scored_paths = frozenset(scored_paths)
        self.unobserved_paths = frozenset(unobserved_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unobserved_paths:
            await self.app(scope, receive, send)
            return
        # Always our own id, never the caller's: the prediction log counts one request per id.
        request_id = f"{random.getrandbits(128):032x}"  # an id, not a secret: no os.urandom per request
        context = RequestContext(request_id, time.perf_counter(), time.time())
        scope[SCOPE_KEY] = context
        status = 0
        latency = 0.0

        async def send_observed(message: Message) -> None:
            nonlocal status, latency
            if message["type"] == "http.response.start":
                latency = time.perf_counter() - context.started
                status = message["status"]
                headers = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id.encode("ascii"))]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            if not status:  # the server error middleware outside us answers 500
                if context.error is None:
                    context.failed("internal_error", [])
                status, latency = 500, time.perf_counter() - context.started
            raise
        finally:
            if status:
                self._observe(scope, context, status, latency)

    def _observe(self, scope: Scope, context: RequestContext, status: int, latency: float) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"  # a route template: bounded label values
        self.metrics.observe_request(endpoint, scope["method"], status, latency)
        if endpoint not in self.scored_paths:
            return
        state = scope["app"].state
        scoring: ScoringRuntime | None = getattr(state, "scoring", None)
        model_version = scoring.model_version if scoring is not None else None
        threshold = scoring.threshold if scoring is not None else None
        if context.model_latency_s is not None and model_version is not None:  # scored
            self.metrics.observe_scores(
                model_version, endpoint, context.model_latency_s, context.probabilities, context.predictions
            )
        prediction_log = getattr(state, "prediction_log", None)
        if prediction_log is not None:
            prediction_log.submit(
                Decision(
                    ts=context.wall_started,
                    request_id=context.request_id,
                    endpoint=endpoint,
                    status=status,
                    latency_s=latency,
                    model_version=model_version,
                    model_latency_s=context.model_latency_s,
                    threshold=threshold,
                    inputs=context.inputs,
                    probabilities=context.probabilities,
                    predictions=context.predictions,
                    error=context.error,
                    error_fields=context.error_fields,
                )
            )
