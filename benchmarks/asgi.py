"""Drive an ASGI app in-process, without a socket: its lifespan, then one request at a time.

What it measures is the app's own CPU cost per request (routing, middleware, dependencies,
validation, scoring, response, the prediction log's hand-off), without uvicorn's HTTP parsing and
the kernel's loopback: less noisy than an HTTP run, so it is the place to compare app variants.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

Message = dict[str, Any]


class AsgiDriver:
    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.app = app
        self.loop = loop or _new_loop()
        self.state: dict[str, Any] = {}
        self._lifespan_in: asyncio.Queue[Message] | None = None
        self._lifespan_out: asyncio.Queue[Message] | None = None
        self._lifespan_task: asyncio.Task[None] | None = None
        self.last_timing: tuple[float, float] = (0.0, 0.0)
        """The last request's seconds from the call into the app to its response start, and to its end."""

    def __enter__(self) -> AsgiDriver:
        self.loop.run_until_complete(self._startup())
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.run_until_complete(self._shutdown())
        self.loop.close()

    async def _startup(self) -> None:
        self._lifespan_in, self._lifespan_out = asyncio.Queue(), asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        self._lifespan_task = asyncio.ensure_future(self.app(scope, self._lifespan_in.get, self._lifespan_out.put))
        await self._lifespan_in.put({"type": "lifespan.startup"})
        message = await self._lifespan_out.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"start-up failed: {message}")

    async def _shutdown(self) -> None:
        assert self._lifespan_in is not None and self._lifespan_out is not None and self._lifespan_task is not None
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        await self._lifespan_out.get()
        await self._lifespan_task

    def post(self, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
        return self.loop.run_until_complete(self.request("POST", path, body, headers))

    def nothing(self) -> None:
        """run_until_complete of an empty coroutine: the driver's own overhead per call."""
        self.loop.run_until_complete(_nothing())

    async def request(
        self, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> tuple[int, bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"content-length", str(len(body)).encode()), *headers],
            "state": dict(self.state),
        }
        delivered = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}

        response_started = 0.0

        async def send(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = time.perf_counter()
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        started = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_timing = (response_started - started, time.perf_counter() - started)
        return status, b"".join(chunks)


async def _nothing() -> None:
    return None


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is not on Windows
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]
