"""The decision record, the system of record of every answered scoring request.

One interface, two backends (`open_recorder` picks by settings):

- JSONL (default, no set-up): `SegmentWriter` appends each record to a per-process file
  (docs/CONTRACTS.md) before the answer is sent; those files are the store.
- PostgreSQL (`DATABASE_URL` set): the same files are a bounded durable buffer; a shipper
  thread copies them in batches to the `decisions` table, at least once and idempotently.

`record()` is what the request path calls: one orjson encoding and one `os.write` (a few
microseconds); it never raises and never touches the network. See README "Decision store".
"""

from __future__ import annotations

from typing import Protocol

from contract.records import Decision
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings


class DecisionRecorder(Protocol):
    @property
    def description(self) -> str:
        """Where records go, for the start-up log line (never a password)."""
        ...

    def start(self) -> None:
        """At start-up, in the worker process."""
        ...

    def record(self, decision: Decision) -> None:
        """Before the answer is sent: the record reaches the kernel. Cheap, never raises, never blocks
        on the network; a failure is counted in /metrics and logged."""
        ...

    def close(self, timeout_s: float) -> None:
        """Graceful shutdown: ship what is left within `timeout_s` (PostgreSQL), release the files."""
        ...


def open_recorder(settings: DecisionStoreSettings, metrics: Metrics) -> DecisionRecorder:
    """The recorder the settings ask for (not started)."""
    from inference.decisions.recorders import JsonlRecorder, PostgresRecorder

    if settings.database_url is None:
        return JsonlRecorder(settings.prediction_log_dir, metrics)
    return PostgresRecorder(
        settings.database_url,
        settings.prediction_log_dir,
        metrics,
        buffer_max_bytes=settings.decision_buffer_max_bytes,
        segment_max_bytes=settings.decision_segment_max_bytes,
        batch_size=settings.decision_ship_batch_size,
        interval_s=settings.decision_ship_interval_s,
    )


__all__ = ["DecisionRecorder", "open_recorder"]
