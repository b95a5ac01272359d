"""The prediction log: one JSON line per scored applicant or rejected call (docs/CONTRACTS.md).

The request path only puts a `LogEntry` on an in-memory queue; a background thread turns
entries into JSON lines and appends them to `predictions-<YYYY-MM-DD>-<host>-<pid>.jsonl`
(UTC day of the request, so files rotate daily; one file per process, so workers never
interleave). `close()` drains the queue: every response sent before a graceful shutdown has
its record on disk.

A log directory that cannot be written (missing, read-only, full) never stops scoring: the
records are dropped, counted through `on_write_failure`, and the service log says so once
per outage (and once more when writing works again).
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

logger = logging.getLogger(__name__)

_DRAIN_MAX = 4096  # entries written per wake-up: one write() and flush() for a burst
# After the first entry the writer lets more gather before taking the GIL to format them:
# under load it wakes ~50 times a second, not once per request, so it rarely competes with
# the event loop. Records reach the disk within this window (and all of them at shutdown).
_GATHER_S = 0.02
_STOP = object()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """What one request to a scoring endpoint leaves for the log; formatted off the hot path."""

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

    def records(self) -> Iterator[dict[str, Any]]:
        """The entry's JSON records: one per scored applicant, or one for a rejected call."""
        common = {
            "ts": datetime.fromtimestamp(self.ts, UTC).isoformat(),
            "request_id": self.request_id,
            "endpoint": self.endpoint,
            "status": self.status,
            "latency_ms": round(self.latency_s * 1000, 3),
        }
        if self.error is None and self.inputs:
            model_latency_ms = round((self.model_latency_s or 0.0) * 1000, 3)
            size = len(self.inputs)
            for index, (inputs, probability, prediction) in enumerate(
                zip(self.inputs, self.probabilities, self.predictions, strict=True)
            ):
                yield {
                    **common,
                    "model_latency_ms": model_latency_ms,
                    "model_version": self.model_version,
                    "batch_index": index,
                    "batch_size": size,
                    "inputs": inputs,
                    "probability": probability,
                    "prediction": prediction,
                    "threshold": self.threshold,
                }
        else:
            yield {
                **common,
                "model_version": self.model_version,
                "error": self.error or f"http_{self.status}",
                "error_fields": list(self.error_fields),
            }


class PredictionLog:
    """Queue + writer thread for `LogEntry`s."""

    def __init__(
        self,
        directory: Path | str,
        on_write_failure: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.directory = Path(directory)
        self._on_write_failure = on_write_failure
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._file: IO[bytes] | None = None
        self._file_day: str | None = None
        self._failing = False
        self._host = socket.gethostname().replace(os.sep, "_") or "localhost"
        self._pid = 0

    def path_for(self, day: str) -> Path:
        return self.directory / f"predictions-{day}-{self._host}-{self._pid}.jsonl"

    def start(self) -> None:
        self._pid = os.getpid()  # at start, not construction: each worker process has its own file
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def submit(self, entry: LogEntry) -> None:
        """Queue an entry (never blocks, never raises)."""
        self._queue.put(entry)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, then stop the writer."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("prediction log: writer still busy after %.0f s at shutdown; records may be lost", timeout)
        self._thread = None

    def _run(self) -> None:
        stop = False
        while not stop:
            entries = [self._queue.get()]
            if entries[0] is not _STOP:
                time.sleep(_GATHER_S)
            try:
                while len(entries) < _DRAIN_MAX:
                    entries.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if _STOP in entries:
                stop = True
                entries = [e for e in entries if e is not _STOP]
            try:
                self._write(entries)
            except Exception:  # the writer must outlive any bad entry, or the queue would grow forever
                logger.exception("prediction log: unexpected error; %d records dropped", len(entries))
                self._on_write_failure(len(entries))
        self._close_file()

    def _write(self, entries: list[LogEntry]) -> None:
        by_day: dict[str, list[bytes]] = {}
        for entry in entries:
            for record in entry.records():
                by_day.setdefault(record["ts"][:10], []).append(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        for day, lines in by_day.items():
            try:
                handle = self._open(day)
                handle.write(b"".join(lines))
                handle.flush()
            except OSError as exc:
                self._close_file()
                self._on_write_failure(len(lines))
                if not self._failing:
                    self._failing = True
                    logger.error(
                        "prediction log: cannot write to %s (%s); scoring continues, records are dropped "
                        "and counted in prediction_log_write_failures_total",
                        self.directory,
                        exc.strerror or exc,
                    )
            else:
                if self._failing:
                    self._failing = False
                    logger.warning("prediction log: writing to %s again", self.directory)

    def _open(self, day: str) -> IO[bytes]:
        if self._file is None or self._file_day != day:
            self._close_file()
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = self.path_for(day).open("ab")
            self._file_day = day
        return self._file

    def _close_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # its records were already counted as failed when the write broke
            self._file = None
            self._file_day = None
