"""The prediction log: one JSON line per scored applicant or rejected call (docs/CONTRACTS.md).

`PredictionLog` is the service's `DecisionRecorder`. The request path only puts a `Decision`
on an in-memory queue; a background thread turns
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
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from contract.records import Decision

logger = logging.getLogger(__name__)

_DRAIN_MAX = 4096  # entries written per wake-up: one write() and flush() for a burst
# After the first entry the writer lets more gather before taking the GIL to format them:
# under load it wakes ~50 times a second, not once per request, so it rarely competes with
# the event loop. Records reach the disk within this window (and all of them at shutdown).
_GATHER_S = 0.02
_STOP = object()


class DecisionRecorder(Protocol):
    """Where the scoring service leaves every decision, before the answer is sent."""

    def start(self) -> None:
        """Begin recording (in the worker process that will record)."""

    def record(self, decision: Decision) -> None:
        """Take one request's decision; cheap, never raises, never blocks on I/O."""

    def close(self, timeout: float = 30.0) -> None:
        """Write out everything taken so far, within `timeout` seconds."""


class PredictionLog:
    """Queue + writer thread for `Decision`s."""

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

    def record(self, entry: Decision) -> None:
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

    def _write(self, entries: list[Decision]) -> None:
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
