"""The app's pure ASGI middlewares (no BaseHTTPMiddleware: it would copy the body and cost a
task per request).

`ObservabilityMiddleware` gives every observed request its id (`x-request-id`, and the
`RequestContext` the scoring service and the error handler read), counts it in the HTTP
metrics once its response has started, and puts on every answer (probes included) the
headers a public endpoint owes: `X-Content-Type-Options: nosniff`, a content security policy
on the documentation pages, no `server` header. The decision-level facts (scores, the
decision record, `Cache-Control: no-store`) are the scoring service's.

`ConfiguredCORS` answers cross-origin browsers only for the origins CORS_ORIGINS lists.

`OneLineStartupFailure` replaces the traceback of a refused start-up by its one-line reason.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.context import SCOPE_KEY, new_context
from inference.metrics import Metrics

REQUEST_ID_HEADER = b"x-request-id"
NOSNIFF = (b"x-content-type-options", b"nosniff")
# Swagger UI and ReDoc as fastapi-offline serves them: assets from here, inline bootstrap
# scripts and styles, ReDoc's web worker from a blob; nothing from anywhere else.
DOCS_POLICY = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    b"frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
)


def _edge_headers(headers: Any, extra: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    return [*(h for h in headers if h[0] != b"server"), *extra]


class ObservabilityMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, unobserved_paths: Collection[str], docs_paths: Collection[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.unobserved_paths = frozenset(unobserved_paths)
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.unobserved_paths or scope["path"] in self.docs_paths:
            extra = (NOSNIFF, DOCS_POLICY) if scope["path"] in self.docs_paths else (NOSNIFF,)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message = {**message, "headers": _edge_headers(message.get("headers", ()), extra)}
                await send(message)

            await self.app(scope, receive, send_with_headers)
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
                headers = _edge_headers(message.get("headers", ()), ((REQUEST_ID_HEADER, request_id), NOSNIFF))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            if not status:  # nothing was sent (the framework's error middleware sends its own 500): uvicorn's 500
                status, latency = 500, _elapsed(context.started)
            raise
        finally:
            if status:
                route = scope.get("route")
                endpoint = getattr(route, "path", None) or "unmatched"  # a route template: bounded labels
                self.metrics.observe_request(endpoint, scope["method"], status, latency)


def _elapsed(started: float) -> float:
    return time.perf_counter() - started


class ConfiguredCORS:
    """Starlette's CORSMiddleware for the origins in CORS_ORIGINS, built once the settings are
    read (at start-up, after the app was made); with no origins, it adds nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._for: object = None
        self._cors: ASGIApp = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        loaded = scope["app"].state.loaded if scope["type"] == "http" else None
        if loaded is None or not loaded.settings.cors_origins:
            await self.app(scope, receive, send)
            return
        if self._for is not loaded.settings:
            self._cors = CORSMiddleware(
                self.app,
                allow_origins=loaded.settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["content-type", "x-api-key", "authorization"],
                expose_headers=["x-request-id", "retry-after"],
            )
            self._for = loaded.settings
        await self._cors(scope, receive, send)


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
