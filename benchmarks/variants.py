"""Variants of the service, to measure a proposed change before anyone edits inference/.

Each variant is an ASGI app built by `inference.app.create_app()` with one piece swapped at start-up
(monkeypatching `inference.lifespan`'s names), served like the real one:

    BENCH_VARIANT=no-log uvicorn benchmarks.variants:app --no-access-log

`python -m benchmarks.http_load --servers service,variant:no-log,noop` runs them side by side.
Variants:
- `no-log`:       prediction records dropped at submit (what logging costs; not a proposal);
- `batched-log`:  records formatted on the request path (one orjson call) and written by a thread
                  that wakes every 50 ms instead of once per request;
- `deferred-log`: as `batched-log`, but the formatting runs on the event loop just after the
                  response has gone out (`loop.call_soon`), off the request's latency; measured
                  no better than the service's own writer (benchmarks/RESULTS.md, section 6);
- `fast-path`:    a pure-ASGI handler for the 200 case of POST /predict, inside the observing
                  middleware (request id, metrics, prediction log unchanged); anything else (no or
                  wrong key, too large, invalid, not ready) goes to the FastAPI route as before,
                  with the body replayed (see FastPredict; the proposal in docs/PERFORMANCE_NOTES.md,
                  written there as inference/fast_path.py);
- `asis`:         the service unchanged, through this module (a control for the module itself).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any

import orjson

import inference.lifespan as lifespan
from contract.records import Decision
from inference.prediction_log import PredictionLog

FLUSH_INTERVAL_S = 0.05


class DroppingLog(PredictionLog):
    def submit(self, entry: Decision) -> None:
        return None


class BatchedLog(PredictionLog):
    """Format on the request path (a few µs), hand bytes to a writer that wakes every 50 ms.

    The stock writer blocks on the queue, so every request wakes it (a futex call in `submit`) and
    it then competes for the GIL with the event loop, typically while `session.run` has released
    the GIL: the loop thread waits to get it back. Here the request thread appends one bytes
    object to a list (atomic under the GIL, no wake-up) and the writer takes the list as a whole.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._stopping = threading.Event()

    def submit(self, entry: Decision) -> None:
        option = orjson.OPT_APPEND_NEWLINE
        for record in entry.records():
            self._pending.put((record["ts"][:10], orjson.dumps(record, option=option)))

    def start(self) -> None:
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._loop, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL_S):
            self._flush()
        self._flush()
        self._close_file()

    def _flush(self) -> None:
        taken: list[tuple[str, bytes]] = []
        try:
            while True:
                taken.append(self._pending.get_nowait())
        except queue.Empty:
            pass
        by_day: dict[str, list[bytes]] = {}
        for day, line in taken:
            by_day.setdefault(day, []).append(line)
        for day, lines in by_day.items():
            try:
                handle = self._open(day)
                handle.write(b"".join(lines))
                handle.flush()
            except OSError:
                self._close_file()
                self._on_write_failure(len(lines))

    def close(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None


class DeferredLog(PredictionLog):
    """Records formatted on the event loop after the response, written by a periodic thread.

    `submit` keeps the entry (a list append). `loop.call_soon` formats it on the event loop once
    the current step is over, i.e. after the response bytes were handed to the socket, while the
    client is still reading them; one callback formats every entry of that loop iteration.
    Without a running loop (a plain call), it formats at once. A thread wakes every 50 ms and
    only writes bytes (the GIL is released during the write), so it never holds the GIL while
    the event loop wants it back from `session.run`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._entries: list[Decision] = []
        self._lines: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._stop = threading.Event()

    def start(self) -> None:
        self._pid = os.getpid()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def submit(self, entry: Decision) -> None:
        self._entries.append(entry)
        if len(self._entries) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._format_entries)
            except RuntimeError:
                self._format_entries()

    def close(self, timeout: float = 30.0) -> None:
        self._format_entries()
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None

    def _format_entries(self) -> None:
        entries, self._entries = self._entries, []
        for entry in entries:
            try:
                for record in entry.records():
                    self._lines.put((record["ts"][:10], orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)))
            except Exception:
                self._on_write_failure(1)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(FLUSH_INTERVAL_S)
            lines: list[tuple[str, bytes]] = []
            try:
                while True:
                    lines.append(self._lines.get_nowait())
            except queue.Empty:
                pass
            if lines:
                try:
                    self._write_lines(lines)
                except Exception:
                    self._on_write_failure(len(lines))
            if stopping:
                break
        self._close_file()

    def _write_lines(self, lines: list[tuple[str, bytes]]) -> None:
        by_day: dict[str, list[bytes]] = {}
        for day, line in lines:
            by_day.setdefault(day, []).append(line)
        for day, chunk in by_day.items():
            try:
                handle = self._open(day)
                handle.write(b"".join(chunk))
                handle.flush()
            except OSError:
                self._close_file()
                self._on_write_failure(len(chunk))


VARIANTS: dict[str, type[PredictionLog]] = {
    "asis": PredictionLog,
    "no-log": DroppingLog,
    "batched-log": BatchedLog,
    "deferred-log": DeferredLog,
    "fast-path": PredictionLog,
}


@dataclass(frozen=True)
class _RouteStub:
    path: str


class FastPredict:
    """POST /predict without Starlette/FastAPI routing, Request objects or dependency solving.

    It only takes the path where everything is fine: the key is one of the ring's, the body is
    within the limit and validates. Every other case is handed to the regular app (which answers
    401/413/422/503 exactly as before) with the body it has read replayed. It sets scope["route"]
    to the route's path so that metrics and the prediction log see the same endpoint.
    """

    def __init__(self, app: Any, path: str = "/predict") -> None:
        self.app = app
        self.path = path
        self._route = _RouteStub(path)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        from pydantic import ValidationError

        from inference.context import SCOPE_KEY
        from inference.routes.scoring import score as _score

        state = scope["app"].state
        runtime = getattr(state, "scoring", None)
        keyring = getattr(state, "keyring", None)
        key = None
        for name, value in scope["headers"]:
            if name == b"x-api-key":
                key = value.decode("latin-1")
                break
        body = b""
        more = True
        if runtime is not None and keyring is not None and key and keyring.accepts(key):
            chunks = []
            size = 0
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunk = message.get("body", b"")
                size += len(chunk)
                chunks.append(chunk)
                more = message.get("more_body", False)
                if size > runtime.max_body_bytes:
                    break
            body = b"".join(chunks)
            if not more and size <= runtime.max_body_bytes:
                try:
                    applicant = runtime.requests.applicant.model_validate_json(body)
                except ValidationError:
                    applicant = None
                if applicant is not None:
                    scope["route"] = self._route  # what the observing middleware reads: the route's path
                    scores = _score(runtime.scorer, (applicant.__dict__,))
                    context = scope.get(SCOPE_KEY)
                    if context is not None:
                        context.scored(*scores)
                    prediction = scores.predictions[0]
                    payload = orjson.dumps(
                        {
                            "prediction": prediction,
                            "probability": scores.probabilities[0],
                            "decision": ("accepted", "refused")[prediction],
                            "threshold": runtime.threshold,
                            "model_version": runtime.model_version,
                            "request_id": context.request_id if context is not None else None,
                        }
                    )
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-length", str(len(payload)).encode()),
                                (b"content-type", b"application/json"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": payload})
                    return
        if not body and more:
            await self.app(scope, receive, send)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)


def create_variant(name: str, settings: Any = None) -> Any:
    """The service's app with the variant's piece swapped in; the swap holds until `restore()`
    (the lifespan reads it at start-up: a process serving one variant never restores)."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; known: {sorted(VARIANTS)}")
    lifespan.PredictionLog = VARIANTS[name]  # type: ignore[misc]
    from starlette.middleware import Middleware

    from inference.app import create_app

    app = create_app(settings)
    if name == "fast-path":
        app.user_middleware.append(Middleware(FastPredict))  # innermost: inside the observing middleware
    return app


def restore() -> None:
    lifespan.PredictionLog = PredictionLog  # type: ignore[misc]


def __getattr__(name: str) -> Any:  # `uvicorn benchmarks.variants:app` builds the app on first access
    if name == "app":
        return create_variant(os.environ.get("BENCH_VARIANT", "asis"))
    raise AttributeError(name)
