"""The two decision recorders: JSONL files as the store, or as the buffer in front of PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import SecretStr

from contract.records import Decision
from inference.decisions.segments import Backlog, SegmentWriter
from inference.metrics import Metrics

logger = logging.getLogger(__name__)


def _writer(directory: Path, metrics: Metrics, **options: object) -> SegmentWriter:
    return SegmentWriter(
        directory,
        on_written=metrics.records_written.inc,
        on_dropped=lambda reason, count: metrics.records_dropped.labels(reason).inc(count),
        **options,  # type: ignore[arg-type]
    )


class JsonlRecorder:
    """The local segment files are the store (the embedded default: nothing to set up)."""

    def __init__(self, directory: Path, metrics: Metrics) -> None:
        self.directory = directory
        self._writer = _writer(directory, metrics)

    def __repr__(self) -> str:
        return f"JsonlRecorder({self.directory})"

    @property
    def description(self) -> str:
        return f"JSONL files in {self.directory}"

    def start(self) -> None:
        self._writer.start()

    def record(self, decision: Decision) -> None:
        self._writer.write(decision)

    def close(self, timeout_s: float) -> None:
        self._writer.close()  # every record is already in the kernel: nothing to flush


class PostgresRecorder:
    """Local segments as a bounded durable buffer, shipped to PostgreSQL by a background thread."""

    def __init__(
        self,
        url: SecretStr,
        directory: Path,
        metrics: Metrics,
        *,
        buffer_max_bytes: int,
        segment_max_bytes: int,
        batch_size: int,
        interval_s: float,
    ) -> None:
        from inference.decisions.shipper import Shipper  # psycopg is only imported when it is used

        self.directory = directory
        self._backlog = Backlog(buffer_max_bytes)
        self._writer = _writer(directory, metrics, backlog=self._backlog, max_segment_bytes=segment_max_bytes)
        self._shipper = Shipper(url, self._writer, self._backlog, metrics, batch_size=batch_size, interval_s=interval_s)

    def __repr__(self) -> str:
        return f"PostgresRecorder({self._shipper.database}, buffer {self.directory})"

    @property
    def description(self) -> str:
        return f"PostgreSQL {self._shipper.database} (local buffer in {self.directory})"

    def start(self) -> None:
        self._writer.start()
        self._shipper.start()

    def record(self, decision: Decision) -> None:
        self._writer.write(decision)

    def close(self, timeout_s: float) -> None:
        self._writer.close()  # the server has answered its last request: the last segment is finished
        self._shipper.stop(timeout_s)

    def pending_bytes(self) -> int:
        """Bytes in the local buffer not yet shipped."""
        return self._shipper.pending_bytes()
