"""The scoring service: the one place that decides what a scoring request gets.

Every scoring request, whichever door carried its bytes (the lean ASGI door in
`inference.door`, or the FastAPI routes in `inference.routes.scoring`), is answered by
`ScoringService.answer`:

    readiness -> API key -> body within its limit -> validation -> one float32 row per
    applicant in spec order -> one model call -> decisions -> answer bytes

and, before the answer leaves, the same facts go to the decision record; the score metrics
follow once the answer is sent (`Answer.after`: nothing a client waits for).
Refusals (401, 413, 422, 503) and unexpected failures (500) take the same way out: one
`Answer` with the service's error shape, one decision record. Single and batch share it all;
to add a field to the answer, change `_result` (and its response model in `inference.schemas`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import numpy as np
import orjson
from anyio import to_thread

from contract.explain import DEFAULT_REASONS, Attributions, Explainer
from contract.names import BATCH_PATH, DECISION_WORDS, PREDICT_PATH
from contract.records import Decision
from contract.requests import APPLICATION_ID, RequestInvalid, RequestModels
from contract.scorer import Scorer
from inference.challenger import Challenger, ShadowScores
from inference.context import RequestContext
from inference.decisions import DecisionRecorder
from inference.errors import (
    InvalidInput,
    MethodNotAllowed,
    ModelNotReady,
    ServiceError,
    as_service_error,
    error_body,
)
from inference.metrics import Metrics
from inference.security import KeyGate

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = (b"content-type", b"application/json")
# A decision about a person: no proxy or browser may keep it.
PRIVATE_JSON = (JSON_CONTENT_TYPE, (b"cache-control", b"no-store"))

BodyReader = Callable[[int], Awaitable[bytes]]
"""Reads the request body, refusing (PayloadTooLarge) past the given number of bytes."""


# Answer and ScoringRequest are built on every request: plain slotted classes (a frozen dataclass
# sets each field through object.__setattr__).
@dataclass(slots=True)
class Answer:
    """What the door sends: a status, raw ASGI headers and the JSON body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    after: Callable[[], None] | None = None
    """Bookkeeping the answer need not wait for (the score metrics): the door calls it once the
    answer is sent. The decision record is never here: it is written before the answer leaves."""


@dataclass(slots=True)
class ScoringRequest:
    """What a door hands the service: the request's facts, and how to read its body."""

    path: str
    method: str
    api_key: str | None
    client: str | None
    """The caller's address (ASGI `scope["client"]`), for failed-key throttling."""
    query: bytes
    """The raw query string: `explain=true` asks for every applicant's attributions."""
    read_body: BodyReader
    context: RequestContext


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A scoring endpoint: its path (the metrics label and record's `endpoint`) and body limit."""

    path: str
    max_body_bytes: int
    batch: bool


class Scores(NamedTuple):
    inputs: Sequence[Mapping[str, Any]]
    probabilities: list[float]
    predictions: list[int]
    model_latency_s: float
    application_ids: Sequence[str | None] = ()
    challenger: ShadowScores | None = None
    """The challenger's scores of the same applicants (record only, never the answer)."""
    reasons: Sequence[list[dict[str, Any]] | None] = ()
    """Each applicant's reasons: the refused ones always, the others with `explain=true`."""
    explanations: Sequence[dict[str, Any]] | None = None
    """Each applicant's attributions (base value + one per model feature), with `explain=true`."""
    batch_size: int | None = None
    """Applicants in the request, when some were refused on their own."""
    positions: Sequence[int] = ()
    """Each scored applicant's index in the request, when some were refused."""
    refused: Sequence[tuple[int, InvalidInput]] = ()
    """The batch applicants refused on their own, with their index."""


class ScoringService:
    """Scores applicants with one loaded model; see the module docstring for the way a request takes."""

    def __init__(
        self,
        scorer: Scorer,
        requests: RequestModels,
        keys: KeyGate,
        recorder: DecisionRecorder,
        metrics: Metrics,
        max_body_bytes: int,
        max_batch_body_bytes: int,
        challenger: Challenger | None = None,
        explainer: Explainer | None = None,
        reasons_per_refusal: int = DEFAULT_REASONS,
    ) -> None:
        self.scorer = scorer
        self.challenger = challenger
        self.explainer = explainer
        self.reasons_per_refusal = reasons_per_refusal
        self.requests = requests
        self.keys = keys
        self.recorder = recorder
        self.metrics = metrics
        metadata = scorer.metadata
        self.model_version = metadata.model_version
        self.threshold = metadata.threshold
        self.endpoints = {
            PREDICT_PATH: Endpoint(PREDICT_PATH, max_body_bytes, batch=False),
            BATCH_PATH: Endpoint(BATCH_PATH, max_batch_body_bytes, batch=True),
        }

    async def answer(self, request: ScoringRequest) -> Answer:
        """The whole answer to one scoring request, already recorded; never raises."""
        endpoint = self.endpoints[request.path]
        context = request.context
        request_id = context.request_id
        scores: Scores | None = None
        try:
            if request.method != "POST":
                raise MethodNotAllowed("Method Not Allowed", headers={"Allow": "POST"})
            self.keys.require("scoring", request.api_key, request.client)
            explain = _wants_explanation(request.query) if request.query else False
            body = await request.read_body(endpoint.max_body_bytes)
            if endpoint.batch:
                # A full batch holds the GIL for tens of milliseconds (validation, encoding): in a
                # worker thread the event loop still gets its turn every switch interval.
                scores = await to_thread.run_sync(self._parse_and_score_batch, body, explain)
                payload = self._batch_payload(scores, request_id)
            else:
                scores = self.score((self.requests.parse_applicant(body).__dict__,), explain)
                payload = self.single_payload(scores, request_id)
            answer = Answer(200, PRIVATE_JSON, payload)
            error = None
        except Exception as exc:
            error = as_service_error(exc)
            if not isinstance(exc, ServiceError | RequestInvalid):
                logger.exception("unexpected %s on %s (request %s)", type(exc).__name__, endpoint.path, request_id)
            answer = error_answer(error, request_id)
            scores = None
        self._record(endpoint, answer.status, context, scores, error)
        if scores is not None and scores.inputs:
            answer.after = partial(self._observe_scores, endpoint, scores)
        return answer

    def score(self, applicants: Sequence[dict[str, Any]], explain: bool = False) -> Scores:
        """Validated applicants -> float32 rows in spec order -> one model call -> decisions,
        with the reasons of every refusal (of every applicant, and their attributions, when
        `explain`).

        Each applicant's `application_id` (not a model input) is taken out of its inputs."""
        application_ids = [applicant.pop(APPLICATION_ID, None) for applicant in applicants]
        rows = self.scorer.encoder.encode_many(applicants)
        model_started = time.perf_counter()
        if self.explainer is None:  # no reasons to give: the graph attributes no row
            scored, attributions = self.scorer.predict_proba(rows), None
        else:
            scored, attributions = self.scorer.predict_attributed(rows, every=explain)
        probabilities: list[float] = scored.tolist()
        model_latency = time.perf_counter() - model_started
        predictions = self.scorer.decide(probabilities)
        shadow = self.challenger.shadow(rows, applicants) if self.challenger is not None else None
        reasons, explanations = self._explain(rows, predictions, explain, attributions)
        return Scores(
            applicants, probabilities, predictions, model_latency, application_ids, shadow, reasons, explanations
        )

    def _explain(
        self, rows: np.ndarray, predictions: list[int], explain: bool, attributions: Attributions | None = None
    ) -> tuple[list[list[dict[str, Any]] | None], list[dict[str, Any]] | None]:
        """Reasons per applicant (None for an accepted one unless `explain`), and the attributions."""
        explainer = self.explainer
        if explainer is None:
            return [None] * len(predictions), None
        k = self.reasons_per_refusal
        if explain:
            contributions, every = explainer.explain_reasons(rows, k, attributions)
            return list(every), [explainer.attribution(row) for row in contributions]
        return explainer.refusal_reasons(rows, predictions, k, attributions), None

    def _parse_and_score_batch(self, body: bytes, explain: bool = False) -> Scores:
        parsed = self.requests.parse_batch(body)
        valid: list[tuple[int, dict[str, Any]]] = []
        refused: list[tuple[int, InvalidInput]] = []
        for i, item in enumerate(parsed):
            if isinstance(item, RequestInvalid):
                refused.append((i, InvalidInput.from_problems(item)))
            else:
                valid.append((i, item.__dict__))
        scores = self.score([applicant for _, applicant in valid], explain) if valid else Scores((), [], [], 0.0)
        if not refused:
            return scores
        return scores._replace(batch_size=len(parsed), positions=[i for i, _ in valid], refused=refused)

    def single_payload(self, scores: Scores, request_id: str) -> bytes:
        """The answer's bytes for one scored applicant (what POST /predict returns with 200)."""
        return orjson.dumps(
            {
                **_result(scores, 0),
                "threshold": self.threshold,
                "model_version": self.model_version,
                "request_id": request_id,
            }
        )

    def _batch_payload(self, scores: Scores, request_id: str) -> bytes:
        results = [_result(scores, n) for n in range(len(scores.probabilities))]
        if scores.refused:  # each refused applicant's problems at its own place
            by_position = dict(zip(scores.positions, results, strict=True))
            by_position |= {i: _item_error(error) for i, error in scores.refused}
            results = [by_position[i] for i in range(len(by_position))]
        return orjson.dumps(
            {
                "predictions": results,
                "threshold": self.threshold,
                "model_version": self.model_version,
                "request_id": request_id,
            }
        )

    def _observe_scores(self, endpoint: Endpoint, scores: Scores) -> None:
        """The scores to the metrics (after the answer is sent)."""
        self.metrics.observe_scores(
            self.model_version, endpoint.path, scores.model_latency_s, scores.probabilities, scores.predictions
        )

    def _record(
        self,
        endpoint: Endpoint,
        status: int,
        context: RequestContext,
        scores: Scores | None,
        error: ServiceError | None,
    ) -> None:
        """The request's decision record, written before the answer leaves."""
        self.recorder.record(self.decision(endpoint.path, status, context, scores, error))

    def decision(
        self,
        endpoint: str,
        status: int,
        context: RequestContext,
        scores: Scores | None,
        error: ServiceError | None = None,
    ) -> Decision:
        """What one request to `endpoint` leaves for the decision record (its latency: up to now)."""
        return Decision(
            ts=context.wall_started,
            request_id=context.request_id,
            endpoint=endpoint,
            status=status,
            latency_s=time.perf_counter() - context.started,
            model_version=self.model_version,
            model_latency_s=scores.model_latency_s if scores is not None else None,
            threshold=self.threshold,
            inputs=scores.inputs if scores is not None else (),
            probabilities=scores.probabilities if scores is not None else (),
            predictions=scores.predictions if scores is not None else (),
            application_ids=scores.application_ids if scores is not None else (),
            challenger=scores.challenger if scores is not None else None,
            reasons=scores.reasons if scores is not None else (),
            error=error.kind if error is not None else None,
            error_fields=error.field_names() if error is not None else (),
            batch_size=scores.batch_size if scores is not None else None,
            positions=scores.positions if scores is not None else (),
            refused_items=[(i, e.kind, e.field_names()) for i, e in scores.refused] if scores is not None else (),
        )


def _result(scores: Scores, n: int) -> dict[str, Any]:
    """Applicant n's result, the same in a single answer and in each batch item."""
    prediction = scores.predictions[n]
    result = {
        "prediction": prediction,
        "probability": scores.probabilities[n],
        "decision": DECISION_WORDS[prediction],
        "application_id": scores.application_ids[n],
    }
    reasons = scores.reasons[n] if scores.reasons else None
    if reasons is not None:
        result["reasons"] = reasons
    if scores.explanations is not None:
        result["explanation"] = scores.explanations[n]
    return result


def _wants_explanation(query: bytes) -> bool:
    values = parse_qs(query.decode("latin-1")).get("explain", [])
    return any(value.lower() in ("true", "1", "yes") for value in values)


def _item_error(error: InvalidInput) -> dict[str, Any]:
    """A batch applicant refused on its own: the error shape, without the request id."""
    return {
        "error": error.kind,
        "message": error.message,
        "details": [{"field": d.field, "problem": d.problem} for d in error.details],
    }


def error_answer(error: ServiceError, request_id: str | None) -> Answer:
    headers = tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items())
    return Answer(error.status_code, (*PRIVATE_JSON, *headers), error_body(error, request_id))


_NOT_READY = ModelNotReady("The model is not loaded (the service is starting or stopping)")


async def answer_scoring(service: ScoringService | None, request: ScoringRequest) -> Answer:
    """What every door calls: the service's answer, or 503 while there is no service."""
    if service is None:
        return error_answer(_NOT_READY, request.context.request_id)
    return await service.answer(request)
