"""Local append-only segment files: where every decision record lands before its answer leaves.

A segment is `predictions-<YYYY-MM-DD>-<host>-<pid>[.<n>].jsonl` (docs/CONTRACTS.md): one JSON
line per record, written by one process only. `SegmentWriter.write` formats a `Decision`
(orjson, microseconds) and hands it to the kernel with one `os.write` on an `O_APPEND` file
descriptor: once it returns the record survives a SIGKILL of the process.

A writer holds an exclusive `flock` on each segment it writes to and releases it when it
closes the segment (rotation, shutdown, death). So any process can tell a live segment from a
finished one (a finished one can be locked), which is how a shipper adopts the segments left
by a dead worker. A writer only writes to a file it has locked, a shipper only deletes one it
has locked: the two never race.

Failures never reach the caller: a record that cannot be written is counted (`on_dropped`) and
the service log says so once per outage, and again when writing works.
"""

from __future__ import annotations

import calendar
import errno
import fcntl
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from contract.records import Decision

logger = logging.getLogger(__name__)

SEGMENT_GLOB = "predictions-*.jsonl"
_SEGMENT_NAME = re.compile(r"^predictions-(\d{4}-\d{2}-\d{2})-(.+)-(\d+)(?:\.(\d+))?\.jsonl$")
_REOPEN_EVERY_S = 1.0  # after a failed open, how long record() goes without retrying the filesystem
_DAY_S = 86_400


@dataclass(frozen=True)
class SegmentName:
    day: str
    host: str
    pid: int
    seq: int

    @property
    def worker(self) -> str:
        return f"{self.host}-{self.pid}"

    @property
    def filename(self) -> str:
        suffix = f".{self.seq}" if self.seq else ""
        return f"predictions-{self.day}-{self.host}-{self.pid}{suffix}.jsonl"

    @classmethod
    def parse(cls, name: str) -> SegmentName | None:
        match = _SEGMENT_NAME.match(name)
        if match is None:
            return None
        day, host, pid, seq = match.groups()
        return cls(day, host, int(pid), int(seq or 0))


def segment_paths(directory: Path) -> list[Path]:
    """The segment files directly in `directory` (sorted), none if it does not exist."""
    try:
        return sorted(p for p in directory.glob(SEGMENT_GLOB) if SegmentName.parse(p.name))
    except OSError:
        return []


def try_lock(fd: int) -> bool:
    """Take the exclusive lock of an open segment without waiting; False if its writer holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def host_name() -> str:
    return socket.gethostname().replace(os.sep, "_") or "localhost"


class Backlog:
    """Bytes written locally and not yet shipped, bounded: the durable buffer's size (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    def try_add(self, size: int) -> bool:
        with self._lock:
            if self._bytes + size > self.limit:
                return False
            self._bytes += size
            return True

    def add(self, size: int) -> None:
        with self._lock:
            self._bytes += size

    def remove(self, size: int) -> None:
        with self._lock:
            self._bytes = max(0, self._bytes - size)


class SegmentWriter:
    """Appends `Decision` records to this process's current segment; thread-safe, never raises."""

    def __init__(
        self,
        directory: Path | str,
        *,
        on_written: Callable[[int], None] = lambda count: None,
        on_dropped: Callable[[str, int], None] = lambda reason, count: None,
        backlog: Backlog | None = None,
        max_segment_bytes: int | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._backlog = backlog
        self._max_segment_bytes = max_segment_bytes
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._day_end = 0.0
        self._partial_tail = False  # the last write stopped mid-line: start the next with a newline
        self._failing: str | None = None  # the outage being reported, if any
        self._retry_at = 0.0
        self._host = host_name()
        self._pid = 0
        self._closed_segments: list[tuple[Path, int]] = []
        self._created: set[Path] = set()

    @property
    def current(self) -> Path | None:
        """The segment being written (None before the first record or while the folder fails)."""
        return self._path

    def wrote(self, path: Path) -> bool:
        """Whether this writer created `path` (a segment of an earlier process never counts)."""
        return path in self._created

    def take_closed(self) -> list[tuple[Path, int]]:
        """Segments (and their sizes) this writer has finished since the last call, for the shipper."""
        with self._lock:
            closed, self._closed_segments = self._closed_segments, []
        return closed

    def start(self) -> None:
        """Bind to this process (call in the worker, after any fork)."""
        self._pid = os.getpid()

    def write(self, decision: Decision) -> None:
        try:
            lines = [orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE) for record in decision.records()]
        except Exception as exc:  # a value orjson cannot encode: count it, never fail the answer
            self._dropped("unreadable", 1, f"record not serialisable ({exc})")
            return
        data = b"".join(lines)
        with self._lock:
            self._append(data, len(lines), decision.ts)

    def close(self) -> None:
        with self._lock:
            self._close_segment()

    # -- under self._lock ------------------------------------------------------------------

    def _append(self, data: bytes, count: int, ts: float) -> None:
        if self._backlog is not None and not self._backlog.try_add(len(data)):
            self._dropped(
                "buffer_full",
                count,
                f"local buffer full ({self._backlog.limit} bytes unshipped); new records are dropped",
            )
            return
        fd, problem = self._segment_for(ts)
        if fd is None:
            self._unbuffer(len(data))
            self._dropped("write_failed", count, problem)
            return
        if self._partial_tail:
            data = b"\n" + data
        try:
            written = os.write(fd, data)
        except OSError as exc:
            self._unbuffer(len(data))
            self._dropped("write_failed", count, f"cannot write to {self._path} ({exc.strerror or exc})")
            return
        self._size += written
        if written < len(data):  # a full disk stops mid-buffer: count what did not land
            landed = data[:written].count(b"\n") - (1 if self._partial_tail else 0)
            self._partial_tail = not data[:written].endswith(b"\n")
            self._unbuffer(len(data) - written)
            if landed:
                self._on_written(landed)
            self._dropped("write_failed", count - landed, f"short write to {self._path} (disk full?)")
            return
        self._partial_tail = False
        self._on_written(count)
        if self._failing is not None:
            logger.warning("decision records: writing to %s again", self.directory)
            self._failing = None

    def _unbuffer(self, size: int) -> None:
        if self._backlog is not None:
            self._backlog.remove(size)

    def _segment_for(self, ts: float) -> tuple[int | None, str]:
        """The descriptor to write a record of time `ts` to (rotating by day and size), or why none."""
        if self._fd is not None:
            full = self._max_segment_bytes is not None and self._size >= self._max_segment_bytes
            if ts < self._day_end and not full:
                return self._fd, ""
            self._close_segment()
        now = time.monotonic()
        if now < self._retry_at:
            return None, ""  # already reported: do not hit a failing filesystem on every request
        try:
            self._open_segment(ts)
        except OSError as exc:
            self._retry_at = now + _REOPEN_EVERY_S
            return None, f"cannot open a segment in {self.directory} ({exc.strerror or exc})"
        return self._fd, ""

    def _open_segment(self, ts: float) -> None:
        day_struct = time.gmtime(ts)
        day = time.strftime("%Y-%m-%d", day_struct)
        day_start = calendar.timegm((day_struct.tm_year, day_struct.tm_mon, day_struct.tm_mday, 0, 0, 0))
        self.directory.mkdir(parents=True, exist_ok=True)
        pid = self._pid or os.getpid()
        for seq in range(10_000):
            path = self.directory / SegmentName(day, self._host, pid, seq).filename
            try:  # a fresh file each time: a restarted process with the same pid never shares one
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue
            if not try_lock(fd):  # a shipper saw the empty file first and will delete it
                os.close(fd)
                continue
            _remove_quietly(offset_path(path))  # a stale offset of an earlier file of this name
            self._created.add(path)
            self._fd, self._path, self._size = fd, path, 0
            self._day_end = day_start + _DAY_S
            self._partial_tail = False
            return
        raise OSError(errno.EEXIST, "no free segment name")

    def _close_segment(self) -> None:
        if self._fd is None:
            return
        try:
            os.close(self._fd)  # releases the lock: the segment is now finished
        except OSError:
            pass
        if self._path is not None:
            self._closed_segments.append((self._path, self._size))
        self._fd = self._path = None

    def _dropped(self, reason: str, count: int, message: str) -> None:
        self._on_dropped(reason, count)
        if message and self._failing != reason:
            self._failing = reason
            logger.error(
                "decision records: %s; scoring continues, records are dropped and counted in "
                "decision_records_dropped_total{reason=%r}",
                message,
                reason,
            )


def offset_path(segment: Path) -> Path:
    """The sidecar holding how far `segment` has been shipped."""
    return segment.with_name(segment.name + ".shipped")


def read_offset(segment: Path, inode: int) -> int:
    """Bytes of `segment` already shipped (0 if never, or if the sidecar belongs to another file)."""
    try:
        stored_inode, offset = offset_path(segment).read_text().split()
        return int(offset) if int(stored_inode) == inode else 0
    except (OSError, ValueError):
        return 0


def write_offset(segment: Path, inode: int, offset: int) -> None:
    """Record durably (atomic rename) that `segment` is shipped up to `offset`."""
    target = offset_path(segment)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(f"{inode} {offset}\n")
    os.replace(temporary, target)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def remove_segment(segment: Path) -> None:
    """Delete a finished segment and its offset sidecar (the caller holds its lock)."""
    _remove_quietly(segment)
    _remove_quietly(offset_path(segment))


def complete_lines(chunk: bytes, max_lines: int) -> Iterator[int]:
    """End offsets (after the newline) of the first `max_lines` complete lines of `chunk`."""
    position = 0
    for _ in range(max_lines):
        end = chunk.find(b"\n", position)
        if end < 0:
            return
        position = end + 1
        yield position
