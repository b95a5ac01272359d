"""The decision record: what one scoring request leaves behind, and its JSON form (docs/CONTRACTS.md).

The service builds one `Decision` per request to a scoring endpoint (scored or refused);
the record writers turn it into one JSON record per scored applicant, or one for a rejected
call; monitoring reads those records back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


class Shadow(Protocol):
    """A challenger's scores of a request's applicants (`inference.challenger.ShadowScores`)."""

    @property
    def model_version(self) -> str: ...
    @property
    def probabilities(self) -> Sequence[float]: ...
    @property
    def predictions(self) -> Sequence[int]: ...


@dataclass(slots=True)  # not frozen: a frozen dataclass sets each of its 19 fields through object.__setattr__
class Decision:
    """What one request to a scoring endpoint leaves for the decision record (built once, never changed)."""

    ts: float
    """Arrival time, seconds since the epoch."""
    request_id: str
    endpoint: str
    status: int
    latency_s: float
    model_version: str | None
    model_latency_s: float | None = None
    threshold: float | None = None
    inputs: Sequence[Mapping[str, Any]] = ()
    probabilities: Sequence[float] = ()
    predictions: Sequence[int] = ()
    error: str | None = None
    error_fields: Sequence[str] = ()
    batch_size: int | None = None
    """Applicants in the request, when some of a batch were refused (default: len(inputs))."""
    positions: Sequence[int] = ()
    """Each scored applicant's index in the request (default: 0, 1, ...)."""
    refused_items: Sequence[tuple[int, str, Sequence[str]]] = ()
    """(index, error kind, fields) of each batch applicant refused on its own."""
    application_ids: Sequence[str | None] = ()
    """Each scored applicant's `application_id` (the desk's own id), when it sent one."""
    challenger: Shadow | None = None
    """The challenger's scores of the same applicants, when one is loaded and answered."""
    reasons: Sequence[Sequence[Mapping[str, Any]] | None] = ()
    """Each scored applicant's reasons as the answer gave them (None: it was given none)."""

    def records(self) -> Iterator[dict[str, Any]]:
        """The entry's JSON records: one per scored or refused applicant, or one for a rejected call.

        A scored applicant's record is one dict literal (no merged partial dicts): it is built
        before every answer."""
        ts = datetime.fromtimestamp(self.ts, UTC).isoformat()
        latency_ms = round(self.latency_s * 1000, 3)
        if self.error is not None or not (self.inputs or self.refused_items):
            yield {
                **self._envelope(ts, latency_ms),
                "model_version": self.model_version,
                "error": self.error or f"http_{self.status}",
                "error_fields": list(self.error_fields),
            }
            return
        model_latency_ms = round((self.model_latency_s or 0.0) * 1000, 3)
        size = self.batch_size or len(self.inputs)
        positions = self.positions or range(len(self.inputs))
        application_ids = self.application_ids or [None] * len(self.inputs)
        challenger = self.challenger
        reasons = self.reasons or [None] * len(self.inputs)
        for n, (index, inputs, probability, prediction, application_id) in enumerate(
            zip(positions, self.inputs, self.probabilities, self.predictions, application_ids, strict=True)
        ):
            record = {  # the envelope of `_envelope` written out: this one is built before every answer
                "ts": ts,
                "request_id": self.request_id,
                "endpoint": self.endpoint,
                "status": self.status,
                "latency_ms": latency_ms,
                "model_latency_ms": model_latency_ms,
                "model_version": self.model_version,
                "batch_index": index,
                "batch_size": size,
                "application_id": application_id,
                "inputs": inputs,
                "probability": probability,
                "prediction": prediction,
                "threshold": self.threshold,
            }
            if challenger is not None:
                record["challenger_version"] = challenger.model_version
                record["challenger_probability"] = challenger.probabilities[n]
                record["challenger_prediction"] = challenger.predictions[n]
            if reasons[n] is not None:
                record["reasons"] = reasons[n]
            yield record
        for index, error, fields in self.refused_items:
            yield {
                **self._envelope(ts, latency_ms),
                "model_version": self.model_version,
                "batch_index": index,
                "batch_size": size,
                "error": error,
                "error_fields": list(fields),
            }

    def _envelope(self, ts: str, latency_ms: float) -> dict[str, Any]:
        return {
            "ts": ts,
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "status": self.status,
            "latency_ms": latency_ms,
        }
