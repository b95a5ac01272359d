"""Retention: decision records hold applicants' personal data, so older ones are deleted.

JSONL: whole segment files whose UTC day is older than the cut-off (a live segment, still
locked by its writer, is left for the next run). PostgreSQL: rows by `ts`, in chunks so that
a large purge never holds long locks.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.store import TABLE
from inference.decisions.segments import SegmentName, remove_segment, try_lock

logger = logging.getLogger(__name__)

_DELETE_CHUNK = 50_000


def cutoff(older_than_days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - timedelta(days=older_than_days)


def purge_jsonl(directory: Path, older_than_days: int, now: datetime | None = None) -> list[Path]:
    """Delete the segments under `directory` whose every record is older than the cut-off."""
    # A segment is named by the day of its first record and may hold later ones up to the
    # next UTC midnight rotation: delete it only when the whole of that day is past the cut-off.
    last_day = (cutoff(older_than_days, now) - timedelta(days=1)).date().isoformat()
    removed = []
    for path in sorted(directory.rglob("predictions-*.jsonl")):
        name = SegmentName.parse(path.name)
        if name is None or name.day > last_day:
            continue
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if not try_lock(fd):
                logger.warning("%s is still being written; left for the next purge", path)
                continue
            remove_segment(path)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def purge_postgres(url: str, older_than_days: int, now: datetime | None = None) -> int:
    """Delete the rows of `decisions` older than the cut-off; returns how many."""
    import psycopg

    limit = cutoff(older_than_days, now)
    deleted = 0
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        while True:
            cursor = connection.execute(
                f"DELETE FROM {TABLE} WHERE ctid IN (SELECT ctid FROM {TABLE} WHERE ts < %s LIMIT %s)",
                (limit, _DELETE_CHUNK),
            )
            deleted += cursor.rowcount
            if cursor.rowcount < _DELETE_CHUNK:
                return deleted
