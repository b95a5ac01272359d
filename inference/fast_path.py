"""POST /predict's usual case as a plain ASGI handler: no routing, Request object or dependencies.

Profiles of the server under load (benchmarks/RESULTS.md) put about 40% of a scoring request's
CPU time in Starlette/FastAPI's own machinery (routing, request objects, dependency solving,
exception wrappers), more than validation, encoding and the model together. `FastPredict` sits
just inside `ObservabilityMiddleware` (so request ids, metrics and the prediction log are
unchanged) and answers the one case that needs none of that machinery: a known API key, a body
within MAX_BODY_BYTES that validates. Every other case (no or wrong key, too large, invalid,
model not loaded, other paths and methods) goes on to the FastAPI route, which answers exactly
as before; the body already read is replayed to it.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inference.context import SCOPE_KEY
from inference.routes.scoring import PREDICT_PATH, prediction_payload, score
from inference.runtime import ScoringRuntime
from inference.security import API_KEY_HEADER, KeyRing

_KEY_HEADER = API_KEY_HEADER.encode("ascii")
_JSON = (b"content-type", b"application/json")


class _Route:
    """What the observing middleware reads from scope["route"]: the route template."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class FastPredict:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = _Route(PREDICT_PATH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PREDICT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        runtime: ScoringRuntime | None = getattr(state, "scoring", None)
        keyring: KeyRing | None = getattr(state, "keyring", None)
        if runtime is None or keyring is None or not _has_valid_key(scope, keyring):
            await self.app(scope, receive, send)  # 503 or 401, from the route as before
            return
        body, complete = await _read(receive, runtime.max_body_bytes)
        if complete:
            try:
                applicant = runtime.requests.applicant.model_validate_json(body)
            except ValidationError:
                pass  # the route says 422, with its details
            else:
                await self._answer(scope, send, runtime, applicant.__dict__)
                return
        await self.app(scope, _replay(body, not complete, receive), send)

    async def _answer(self, scope: Scope, send: Send, runtime: ScoringRuntime, applicant: dict[str, Any]) -> None:
        scope["route"] = self.route
        scores = score(runtime.scorer, (applicant,))
        context = scope.get(SCOPE_KEY)
        if context is not None:
            context.scored(*scores)
        payload = prediction_payload(runtime, scores, context.request_id if context is not None else None)
        headers = [(b"content-length", str(len(payload)).encode("ascii")), _JSON]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _has_valid_key(scope: Scope, keyring: KeyRing) -> bool:
    for name, value in scope["headers"]:
        if name == _KEY_HEADER:
            return bool(value) and keyring.accepts(value.decode("latin-1"))
    return False


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """(the body read so far, whether it is all of it and within `limit`)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False  # disconnected: the route sees it too
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A receive that first gives back what was already read, then reads on."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": more}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed
