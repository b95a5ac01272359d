"""Ships local segments to PostgreSQL's `decisions` table: at least once, idempotent, off the request path.

A background thread reads each segment from its shipped offset, takes up to `batch_size`
complete lines, and in one transaction COPYs them as raw `jsonb` into a temporary table and
`INSERT ... SELECT ... ON CONFLICT (request_id, batch_index) DO NOTHING` into `decisions`
(PostgreSQL parses the JSON: the shipper never formats a record under the GIL). Only after the
commit does it move the segment's offset (a sidecar file renamed into place), so a crash
in between ships the batch again and the unique key drops the copy.

Besides its own worker's segments it adopts finished ones, those it can `flock`: rotated
segments of its own, and those left by a dead process (SIGKILL) or a stopped worker; fully
shipped finished segments are deleted. Database down or slow: the thread retries with back-off
and the records wait on disk; the request path never waits for it. The URL's password never
reaches a log line (every message goes through `contract.store.scrub`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import orjson
import psycopg
from pydantic import SecretStr

from contract.store import ENVELOPE_COLUMNS, TABLE, describe_database_url, scrub
from inference.decisions.schema import migrate
from inference.decisions.segments import (
    Backlog,
    SegmentName,
    SegmentWriter,
    complete_lines,
    read_offset,
    remove_segment,
    segment_paths,
    try_lock,
    write_offset,
)
from inference.metrics import Metrics

logger = logging.getLogger(__name__)

_READ_PER_RECORD = 8 * 1024  # bytes read per wanted record (a full applicant's record is ~3.4 KB)
_ORPHAN_SCAN_S = 10.0  # how often to look for segments left by other processes
_BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 5.0)

_STAGING = "decisions_incoming"
# Stored uncompressed: a ~3.6 KB record is TOASTed, and compressed (pglz) it was decompressed again by
# every field read below. Uncompressed, and read once by jsonb_to_record, the database spends 74 µs of
# CPU a record instead of 180 (benchmarks/RESULTS.md §10). (PostgreSQL 15 has no STORAGE in CREATE.)
_CREATE_STAGING = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (r jsonb NOT NULL) ON COMMIT DELETE ROWS",
    f"ALTER TABLE {_STAGING} ALTER COLUMN r SET STORAGE EXTERNAL",
)
# One place maps a JSON record (docs/CONTRACTS.md) to the typed columns (contract.store): each
# record's fields by name and type, read in one pass (absent or JSON null: SQL NULL).
_RECORD_FIELDS = {
    "ts": "timestamptz",
    "request_id": "text",
    "batch_index": "integer",
    "batch_size": "integer",
    "endpoint": "text",
    "status": "smallint",
    "latency_ms": "double precision",
    "model_latency_ms": "double precision",
    "model_version": "text",
    "threshold": "double precision",
    "probability": "double precision",
    "prediction": "smallint",
    "error": "text",
    "error_fields": "text[]",
    "application_id": "text",
    "challenger_version": "text",
    "challenger_probability": "double precision",
    "challenger_prediction": "smallint",
    "reasons": "jsonb",
    "inputs": "jsonb",
}
_COLUMN_VALUES = {
    **{name: f"x.{name}" for name in _RECORD_FIELDS},
    "batch_index": "COALESCE(x.batch_index, 0)",  # a rejected call's record has none
    "worker": "%(worker)s",
}
_INSERT = (
    f"INSERT INTO {TABLE} ({', '.join(ENVELOPE_COLUMNS)}, inputs) "
    f"SELECT {', '.join(_COLUMN_VALUES[c] for c in ENVELOPE_COLUMNS)}, x.inputs "
    f"FROM {_STAGING}, jsonb_to_record({_STAGING}.r) AS x({', '.join(f'{k} {v}' for k, v in _RECORD_FIELDS.items())}) "
    "ON CONFLICT (request_id, batch_index) DO NOTHING"
)


@dataclass
class _Segment:
    """One segment being shipped: its read descriptor and how far it is shipped."""

    path: Path
    fd: int
    inode: int
    offset: int
    worker: str
    finished: bool  # locked by us: its writer is gone, it can be deleted once shipped
    own_backlog: bool  # its bytes count in this worker's bounded backlog


class Shipper:
    def __init__(
        self,
        url: SecretStr,
        writer: SegmentWriter,
        backlog: Backlog,
        metrics: Metrics,
        *,
        batch_size: int,
        interval_s: float,
    ) -> None:
        self._url = url
        self.database = describe_database_url(url.get_secret_value())
        self._writer = writer
        self._backlog = backlog
        self._metrics = metrics
        self._batch_size = batch_size
        self._interval_s = interval_s
        self._connection: psycopg.Connection | None = None
        self._segments: dict[Path, _Segment] = {}
        self._live: _Segment | None = None
        self._orphan_bytes = 0
        self._next_scan = 0.0
        self._failures = 0
        self._stop = threading.Event()
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None
        metrics.buffer_bytes.set_function(lambda: self._backlog.bytes + self._orphan_bytes)

    def __repr__(self) -> str:
        return f"Shipper({self.database})"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="decision-shipper", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> bool:
        """Ship what is left within `timeout_s`, then stop; True if everything was shipped."""
        if self._thread is None:
            return self.pending_bytes() == 0
        self._deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._thread.join(timeout_s + 1.0)
        if self._thread.is_alive():  # stuck in a network call: leave its descriptors alone
            logger.error("decision records: shipper still busy after %.1f s at shutdown", timeout_s)
            return False
        self._thread = None
        left = self.pending_bytes()
        if left:
            logger.error(
                "decision records: %d bytes not shipped to %s within %.1f s; they stay in %s and are "
                "shipped by the next process that starts on this folder",
                left,
                self.database,
                timeout_s,
                self._writer.directory,
            )
        self._close_all()
        return left == 0

    def pending_bytes(self) -> int:
        return self._backlog.bytes + self._orphan_bytes

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                caught_up = self._ship_round()
                self._failures = 0
            except psycopg.Error as exc:
                self._lost_connection(exc)
                caught_up = False
            except Exception as exc:  # the shipper must outlive any surprise, or records pile up
                self._metrics.ship_failures.inc()
                details = self._scrub("".join(traceback.format_exception(exc)))
                logger.error("decision records: shipper error: %s", details)
                caught_up = False
            if stopping and (caught_up or self._deadline is None or time.monotonic() >= self._deadline):
                return
            if not caught_up and self._failures:
                delay = _BACKOFF_S[min(self._failures - 1, len(_BACKOFF_S) - 1)]
            else:
                delay = 0.0 if not caught_up else self._interval_s
            if stopping:
                delay = min(delay, max(0.0, (self._deadline or 0.0) - time.monotonic()))
            self._stop.wait(delay)

    def _ship_round(self) -> bool:
        """Ship every known segment as far as it goes; True when nothing is left to ship."""
        connection = self._connect()
        for path, size in self._writer.take_closed():
            self._adopt_own(path, size)
        if time.monotonic() >= self._next_scan:
            self._scan_orphans()
        self._follow_live_segment()
        caught_up = True
        for segment in list(self._segments.values()):
            caught_up &= self._ship_segment(connection, segment)
        if self._live is not None:
            caught_up &= self._ship_segment(connection, self._live)
        return caught_up

    def _connect(self) -> psycopg.Connection:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection = psycopg.connect(
            self._url.get_secret_value(),
            autocommit=True,
            connect_timeout=5,
            application_name="credit-scoring-api decision shipper",
        )
        applied = migrate(connection)
        if applied:
            logger.info("decision store %s: applied migrations %s", self.database, ", ".join(applied))
        for statement in _CREATE_STAGING:
            connection.execute(statement)
        if self._failures:
            logger.warning("decision records: %s reachable again; shipping the local buffer", self.database)
        self._connection = connection
        return connection

    def _lost_connection(self, exc: psycopg.Error) -> None:
        self._metrics.ship_failures.inc()
        self._failures += 1
        if self._failures == 1:
            logger.error(
                "decision records: cannot ship to %s (%s); scoring continues, records wait in %s",
                self.database,
                self._scrub(str(exc).strip() or type(exc).__name__),
                self._writer.directory,
            )
        if self._connection is not None:
            try:
                self._connection.close()
            except psycopg.Error:
                pass
        self._connection = None

    def _scrub(self, text: str) -> str:
        return scrub(text, self._url.get_secret_value())

    # -- segments ----------------------------------------------------------------------------

    def _follow_live_segment(self) -> None:
        current = self._writer.current
        if self._live is not None and self._live.path == current:
            return
        if current is None:
            return
        name = SegmentName.parse(current.name)
        try:
            fd = os.open(current, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return
        inode = os.fstat(fd).st_ino
        if self._live is not None:
            os.close(self._live.fd)  # rotated: the old one comes back through take_closed()
        self._live = _Segment(current, fd, inode, 0, name.worker if name else "unknown", False, True)

    def _adopt_own(self, path: Path, size: int) -> None:
        """Take over a segment this worker's writer has finished (rotation or shutdown)."""
        shipped = 0
        if self._live is not None and self._live.path == path:
            shipped = self._live.offset
            os.close(self._live.fd)
            self._live = None
        if not self._adopt(path, own=True):  # another worker's shipper took it: its bytes are theirs now
            self._backlog.remove(max(0, size - shipped))

    def _adopt(self, path: Path, *, own: bool) -> bool:
        """Lock a finished segment and queue it for shipping; False if it is live or already taken."""
        if path in self._segments:
            return True
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False  # shipped and deleted by another worker meanwhile
        try:
            if not try_lock(fd) or os.stat(path).st_ino != os.fstat(fd).st_ino:
                os.close(fd)  # still written by a live process, or replaced meanwhile
                return False
        except OSError:
            os.close(fd)
            return False
        stat = os.fstat(fd)
        offset = read_offset(path, stat.st_ino)
        name = SegmentName.parse(path.name)
        segment = _Segment(path, fd, stat.st_ino, offset, name.worker if name else "unknown", True, own)
        if not own:
            self._orphan_bytes += max(0, stat.st_size - offset)
            if stat.st_size > offset:
                logger.info("decision records: shipping %s left by %s", path.name, segment.worker)
        self._segments[path] = segment
        return True

    def _scan_orphans(self) -> None:
        self._next_scan = time.monotonic() + _ORPHAN_SCAN_S
        for path in segment_paths(self._writer.directory):
            # This writer's own segments come through take_closed() (their bytes are in its backlog);
            # same-named files of an earlier process with the same pid are orphans like any other.
            if not self._writer.wrote(path) and path not in self._segments:
                self._adopt(path, own=False)

    def _ship_segment(self, connection: psycopg.Connection, segment: _Segment) -> bool:
        """Ship `segment` up to its last complete line as it stood when this round began; True if
        nothing was left of that.

        What the writer appends meanwhile waits for the next round: chasing a live segment under
        load shipped a few records a transaction, thousands of transactions a second, and that
        overhead took CPU from the requests (benchmarks/RESULTS.md §10)."""
        size = os.fstat(segment.fd).st_size
        while True:
            if segment.offset >= size:
                if segment.finished:
                    self._finish(segment)
                return True
            want = max(64 * 1024, self._batch_size * _READ_PER_RECORD)
            chunk = os.pread(segment.fd, min(size - segment.offset, want), segment.offset)
            ends = list(complete_lines(chunk, self._batch_size))
            if not ends:
                if segment.finished:  # a dead writer's last, cut line: nothing will complete it
                    self._dropped("unreadable", 1, f"{segment.path.name}: a cut last line was skipped")
                    self._advance(segment, len(chunk))
                    continue
                return True  # the writer is mid-line (cannot happen with one write per record)
            batch = chunk[: ends[-1]]
            self._insert(connection, segment, batch, len(ends))
            self._advance(segment, len(batch))
            if self._stop.is_set() and self._deadline is not None and time.monotonic() >= self._deadline:
                return False

    def _insert(self, connection: psycopg.Connection, segment: _Segment, batch: bytes, count: int) -> None:
        try:
            inserted = self._copy_insert(connection, batch, segment.worker)
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError):
            inserted = self._insert_line_by_line(connection, batch, segment)
        self._metrics.records_shipped.inc(inserted)

    def _copy_insert(self, connection: psycopg.Connection, lines: bytes, worker: str) -> int:
        with connection.transaction(), connection.cursor() as cursor:
            # COPY text format: JSON has no raw tab or newline inside a line; only backslashes need escaping.
            with cursor.copy(f"COPY {_STAGING} (r) FROM STDIN") as copy:
                copy.write(lines.replace(b"\\", b"\\\\"))
            cursor.execute(_INSERT, {"worker": worker})
            return max(cursor.rowcount, 0)

    def _insert_line_by_line(self, connection: psycopg.Connection, batch: bytes, segment: _Segment) -> int:
        """A batch the database refused: keep every line it accepts, count the others."""
        inserted = 0
        for line in batch.splitlines(keepends=True):
            try:
                record = orjson.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
            except ValueError:
                self._dropped("unreadable", 1, f"{segment.path.name}: a line that is not a JSON record was skipped")
                continue
            try:
                inserted += self._copy_insert(connection, line, segment.worker)
            except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                self._dropped(
                    "rejected",
                    1,
                    f"{segment.path.name}: record {str(record.get('request_id'))[:40]} refused by the "
                    f"database ({self._scrub(type(exc).__name__)})",
                )
        return inserted

    def _advance(self, segment: _Segment, size: int) -> None:
        segment.offset += size
        write_offset(segment.path, segment.inode, segment.offset)
        if segment.own_backlog:
            self._backlog.remove(size)
        else:
            self._orphan_bytes = max(0, self._orphan_bytes - size)

    def _finish(self, segment: _Segment) -> None:
        remove_segment(segment.path)  # we hold its lock: no writer can be appending to it
        os.close(segment.fd)
        del self._segments[segment.path]

    def _dropped(self, reason: str, count: int, message: str) -> None:
        self._metrics.records_dropped.labels(reason).inc(count)
        logger.error("decision records: %s (counted in decision_records_dropped_total{reason=%r})", message, reason)

    def _close_all(self) -> None:
        for segment in [*self._segments.values(), *([self._live] if self._live else [])]:
            try:
                os.close(segment.fd)
            except OSError:
                pass
        self._segments.clear()
        self._live = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None
