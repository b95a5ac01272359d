"""The scoring service built in-process, without a server: for step benchmarks and profiles."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from contract.names import PREDICT_PATH
from contract.requests import build_request_models
from contract.scorer import Scorer
from inference.context import new_context
from inference.decisions.recorders import JsonlRecorder
from inference.lifespan import load_explainer
from inference.metrics import Metrics
from inference.security import KeyGate, KeyRing
from inference.service import Answer, ScoringRequest, ScoringService
from inference.throttle import FailedKeyThrottle

KEY = "bench-key"


def build_service(scorer: Scorer, record_dir: Path, reasons: bool = True) -> ScoringService:
    """The service as the lifespan builds it (default limits), its recorder started: close it after.
    `reasons=False`: without the explainer, to measure what reasons cost."""
    metrics = Metrics()
    recorder = JsonlRecorder(record_dir, metrics)
    recorder.start()
    return ScoringService(
        scorer=scorer,
        requests=build_request_models(scorer.metadata.feature_spec, max_batch_size=1000),
        keys=KeyGate(
            {"scoring": KeyRing([SecretStr(KEY)]), "outcomes": KeyRing([])},
            FailedKeyThrottle(limit=10, window_s=60.0, max_clients=10_000),
            on_failure=lambda: None,
            on_throttled=lambda: None,
        ),
        recorder=recorder,
        metrics=metrics,
        max_body_bytes=64 * 1024,
        max_batch_body_bytes=8 * 1024 * 1024,
        explainer=load_explainer(scorer) if reasons else None,
    )


def scoring_request(body: bytes, key: str = KEY, path: str = PREDICT_PATH, query: bytes = b"") -> ScoringRequest:
    """A POST to a scoring path whose body is already read, as a door hands it to the service."""

    async def read_body(limit: int) -> bytes:
        return body

    return ScoringRequest(path, "POST", key, "127.0.0.1", query, read_body, new_context())


def answer_now(service: ScoringService, request: ScoringRequest) -> Answer:
    """`service.answer(request)` as a door runs it: the answer, then its after-answer bookkeeping."""
    answer: Answer = run_now(service.answer(request))
    if answer.after is not None:
        answer.after()
    return answer


def run_now(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a single applicant's answer) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the coroutine suspended")
