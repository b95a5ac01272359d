"""The lean door: POST /predict and /predict/batch as plain ASGI, straight to the scoring service.

Profiles of the server under load (benchmarks/RESULTS.md) put about 40% of a scoring
request's CPU time in Starlette/FastAPI's own machinery (routing, request objects, dependency
solving, exception wrappers). This door skips all of it: it takes the key header and the body
from the ASGI messages and hands them to `answer_scoring`, the same call the FastAPI routes
make (`inference.routes.scoring`), so both doors give the same answer for every case. It sits
inside `ObservabilityMiddleware` (request id, HTTP metrics) and outside the whole framework
(`inference.app`), so a request it answers enters none of Starlette's or FastAPI's layers (error
middleware, exception wrappers, routing). With FAST_DOOR=false, POST requests
go on to the FastAPI routes instead; other methods on these paths get the service's 405 (and
their record) from this door either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from inference.body import read_asgi_body
from inference.context import context_of, new_context
from inference.security import API_KEY_HEADER
from inference.service import Answer, ScoringRequest, answer_scoring
from inference.state import loaded_of

_KEY_HEADER = API_KEY_HEADER.encode("ascii")
_CONTENT_LENGTH = b"content-length"


class ScoringDoor:
    def __init__(self, app: ASGIApp, routes: Mapping[str, BaseRoute]) -> None:
        self.app = app
        self.routes = routes  # path -> the FastAPI route, for the metrics' endpoint label

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        loaded = loaded_of(scope["app"])
        method = scope["method"]
        if method == "POST" and loaded is not None and not loaded.settings.fast_door:
            await self.app(scope, receive, send)  # the FastAPI routes answer, through the same service
            return
        scope["route"] = route
        api_key, declared_length = key_and_length(scope["headers"])
        client = scope.get("client")
        request = ScoringRequest(
            path=scope["path"],
            method=method,
            api_key=api_key,
            client=client[0] if client else None,
            query=scope.get("query_string", b""),
            read_body=partial(read_asgi_body, receive, declared_length),
            context=context_of(scope) or new_context(),
        )
        answer = await answer_scoring(loaded.service if loaded is not None else None, request)
        await send_answer(send, answer)
        if answer.after is not None:
            answer.after()


def key_and_length(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The API key (the first one sent) and the declared Content-Length of a request's ASGI headers."""
    api_key = declared_length = None
    for name, value in headers:
        if name == _KEY_HEADER and api_key is None:
            api_key = value.decode("latin-1")
        elif name == _CONTENT_LENGTH:
            declared_length = value.decode("latin-1")
    return api_key, declared_length


async def send_answer(send: Send, answer: Answer) -> None:
    headers = [(b"content-length", str(len(answer.body)).encode("ascii")), *answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})
