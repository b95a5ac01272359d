"""The work floor: what every answer to POST /predict has to do, and nothing more.

The FastAPI no-op floor (`benchmarks/noop_app.py`) measures HTTP + the framework + validation.
This floor measures the work the issues mandate for each answer instead, with the service's own
pieces and none of its bookkeeping:

1. the API key compared (`inference.security.KeyRing`, as the service does);
2. the body read under the service's size limit (`inference.body.read_asgi_body`, the lean door's)
   and validated by the same request models (`contract.requests`);
3. the applicant scored by `ScoringService.score` itself: encoding, one onnxruntime call that also
   attributes a refused row, the decision at the threshold, the reasons of a refusal;
4. the decision record built by `ScoringService.decision`, in the contract's format
   (`contract.records.Decision.records`), handed to the kernel with one `os.write` on an
   `O_APPEND` file before the answer (what survives a SIGKILL);
5. the answer, built by `ScoringService.single_payload`, with its request id.

Left out, and each needed by the real service: the request id header's middleware, the HTTP and
score metrics, the record writer's rotation, size bound and failure counting, error answers (it
serves valid requests only: anything else fails loudly), the FastAPI routes, docs and probes.
So a target the service is held to that this floor misses cannot be met by any service that
does the mandated work on the same server and machine (benchmarks/RESULTS.md section 20).

    MODEL_PATH=models/credit_scoring.onnx API_KEY=k WORK_FLOOR_RECORD_DIR=/tmp/records \
        uvicorn benchmarks.work_floor:app --no-access-log

`benchmarks/http_load.py --servers work-floor,...` starts it beside the service and the no-op floor.
`work-floor-spin` (WORK_FLOOR_SPIN_US=300) keeps its event loop busy after each answer until the
next request arrives: at 1 connection its vCPU then never halts between requests, which shows what
the mandated work costs without this VM's wake-ups (benchmarks/RESULTS.md section 22).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from contract.names import PREDICT_PATH, READY_PATH
from contract.scorer import Scorer
from inference.body import read_asgi_body
from inference.context import new_context
from inference.door import key_and_length
from inference.security import KeyRing
from inference.service import ScoringService

Message = dict[str, Any]
_JSON = (b"content-type", b"application/json")


class WorkFloor:
    """A bare ASGI app: `/ready`, and POST /predict doing only the mandated work."""

    def __init__(self) -> None:
        self.service: ScoringService | None = None
        self.keys: KeyRing | None = None
        self.fd = -1
        self.arrived = 0
        # WORK_FLOOR_SPIN_US: after each answer, keep the event loop busy until the next request
        # arrives or that many microseconds pass, so an idle vCPU never halts between two requests
        # at 1 connection. A bound for measurements only (it burns a core whenever traffic pauses).
        self.spin_s = int(os.environ.get("WORK_FLOOR_SPIN_US", "0")) / 1e6

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["path"] == PREDICT_PATH:
            await self._predict(scope, receive, send)
        elif scope["path"] == READY_PATH:
            await _send(send, 200 if self.service is not None else 503, b'{"status":"ready"}', ())
        else:
            await _send(send, 404, b'{"error":"not_found"}', ())

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._load()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                os.close(self.fd)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _load(self) -> None:
        from benchmarks.inprocess import build_service  # the service as the lifespan builds it

        scorer = Scorer(os.environ["MODEL_PATH"])
        scorer.load()
        directory = Path(os.environ.get("WORK_FLOOR_RECORD_DIR") or tempfile.mkdtemp(prefix="work-floor-"))
        directory.mkdir(parents=True, exist_ok=True)
        self.service = build_service(scorer, directory)  # its own recorder stays unused: see `_predict`
        self.keys = KeyRing([SecretStr(os.environ["API_KEY"])])
        path = directory / f"work-floor-{os.getpid()}.jsonl"
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def _predict(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        service, keys = self.service, self.keys
        assert service is not None and keys is not None, "not started"
        self.arrived += 1
        context = new_context()
        api_key, declared_length = key_and_length(scope["headers"])  # as the lean door reads them
        if not keys.accepts(api_key or ""):
            await _send(send, 401, b'{"error":"unauthorized"}', ())
            return
        body = await read_asgi_body(receive, declared_length, service.endpoints[PREDICT_PATH].max_body_bytes)
        scores = service.score((service.requests.parse_applicant(body).__dict__,))
        decision = service.decision(PREDICT_PATH, 200, context, scores)  # the service's own record
        os.write(self.fd, b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in decision.records()))
        answer = service.single_payload(scores, context.request_id)  # the service's own answer bytes
        await _send(send, 200, answer, ((b"x-request-id", context.request_id.encode("ascii")),))
        if self.spin_s:
            await self._spin_until_the_next_request()

    async def _spin_until_the_next_request(self) -> None:
        arrived, deadline = self.arrived, time.perf_counter() + self.spin_s
        while self.arrived == arrived and time.perf_counter() < deadline:
            await asyncio.sleep(0)


async def _send(send: Any, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...]) -> None:
    start = [(b"content-length", str(len(body)).encode("ascii")), _JSON, *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


app = WorkFloor()
