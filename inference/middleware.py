"""The app's two pure ASGI middlewares (no BaseHTTPMiddleware: it would copy the body and cost a
task per request).

`ObservabilityMiddleware` gives every observed request its id (`x-request-id`, and the
`RequestContext` the scoring service and the error handler read) and counts it in the HTTP
metrics once its response has started. The decision-level facts (scores, the decision record)
are the scoring service's.

`OneLineStartupFailure` replaces the traceback of a refused start-up by its one-line reason.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.context import SCOPE_KEY, new_context
from inference.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, unobserved_paths: Collection[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.unobserved_paths = frozenset(unobserved_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.unobserved_paths:
            await self.app(scope, receive, send)
            return
        context = new_context()
        scope[SCOPE_KEY] = context
        request_id = context.request_id.encode("ascii")
        status = 0
        latency = 0.0

        async def send_observed(message: Message) -> None:
            nonlocal status, latency
            if message["type"] == "http.response.start":
                latency = _elapsed(context.started)
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]}
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            if not status:  # the server error middleware outside us answers 500
                status, latency = 500, _elapsed(context.started)
            raise
        finally:
            if status:
                route = scope.get("route")
                endpoint = getattr(route, "path", None) or "unmatched"  # a route template: bounded labels
                self.metrics.observe_request(endpoint, scope["method"], status, latency)


def _elapsed(started: float) -> float:
    return time.perf_counter() - started


class OneLineStartupFailure:
    """uvicorn logs the `lifespan.startup.failed` message as is; for a refused start-up the stack
    says nothing the reason does not, so the operator sees
    `ERROR: Refusing to start: API_KEY is not set ...` and the process exits non-zero."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_reason(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                reason = scope["app"].state.startup_failure
                if reason:
                    message = {**message, "message": f"Refusing to start: {reason}"}
            await send(message)

        await self.app(scope, receive, send_reason)
