"""Read the decision store (docs/CONTRACTS.md), JSONL files or PostgreSQL, into pandas tables.

A log folder holds one file per process and UTC day (`predictions-<day>-<host>-<pid>[.<n>].jsonl`),
possibly gathered from several machines into sub-folders (`load_logs`); a PostgreSQL store holds
the same records in its `decisions` table (`load_store`). Either is read for a time window
(`since` included, `until` excluded, UTC; open when None) into two tables:

- `predictions`: one row per scored applicant, the 120 inputs typed by the feature spec, then
  ts, request_id, endpoint, status, latency_ms, model_latency_ms, probability, prediction, ...
  (what drift analysis compares with the reference sample);
- `requests`: one row per HTTP request, scored or rejected (what error rates and latency
  percentiles are computed on: a batch of 100 applicants is one request, not 100).

A line that does not parse (the last line of a file whose writer was killed mid-write) is
skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from contract.spec import FeatureSpec
from contract.store import COLUMNS, TABLE, describe_database_url
from monitoring.artifacts import PREDICTION, PROBABILITY, typed_frame

logger = logging.getLogger(__name__)

LOG_PATTERN = "predictions-*.jsonl"
META_COLUMNS = [
    "ts",
    "request_id",
    "endpoint",
    "status",
    "latency_ms",
    "model_latency_ms",
    "model_version",
    "batch_index",
    "batch_size",
    PROBABILITY,
    PREDICTION,
    "threshold",
    "application_id",
    "challenger_version",
    "challenger_probability",
    "challenger_prediction",
]
REQUEST_COLUMNS = [
    "ts",
    "request_id",
    "endpoint",
    "status",
    "latency_ms",
    "model_latency_ms",
    "model_version",
    "batch_size",
    "error",
    "error_fields",
]


class NoLogsError(FileNotFoundError):
    """The log folder does not exist or holds no prediction log file."""


@dataclass(frozen=True)
class TimeWindow:
    """[since, until) in UTC; None leaves that side open."""

    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError(
                f"empty window: since {self.since.isoformat()} is not before until {self.until.isoformat()}"
            )

    def contains(self, ts: datetime) -> bool:
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)

    def may_hold_day(self, day: str) -> bool:
        """Whether a segment named by UTC `day` can hold records of the window (it holds that day's)."""
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return (self.since is None or start + timedelta(days=1) > self.since) and (
            self.until is None or start - timedelta(days=1) < self.until  # a segment may start just before midnight
        )

    def as_dict(self) -> dict[str, str | None]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }

    def describe(self) -> str:
        since = self.since.isoformat() if self.since else "the first record"
        until = self.until.isoformat() if self.until else "the last record"
        return f"from {since} to {until}"


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it gives no offset."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True)
class PredictionLog:
    predictions: pd.DataFrame
    requests: pd.DataFrame
    files: tuple[Path, ...]
    skipped_lines: int
    source: str = ""
    """Where the records were read (a folder, or a database URL without its password)."""
    window: TimeWindow = TimeWindow()

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a status >= 400 (0 when there are none)."""
        if self.requests.empty:
            return 0.0
        return float((self.requests["status"] >= 400).mean())


def log_files(folder: Path | str, window: TimeWindow | None = None) -> list[Path]:
    """The prediction log files under `folder` (or `folder` itself if it is a file), sorted;
    with a window, only those whose day can hold some of its records."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise NoLogsError(f"log folder not found: {folder}")
    files = sorted(folder.rglob(LOG_PATTERN))
    if not files:
        raise NoLogsError(f"no prediction log files ({LOG_PATTERN}) under {folder}")
    if window is not None:
        files = [f for f in files if _file_day(f) is None or window.may_hold_day(_file_day(f))]  # type: ignore[arg-type]
    return files


def _file_day(path: Path) -> str | None:
    day = path.name[len("predictions-") : len("predictions-") + 10]
    try:
        datetime.fromisoformat(day)
    except ValueError:
        return None
    return day


def iter_records(paths: Iterable[Path], skipped: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Each JSON object of each file; lines that do not parse are skipped (counted in `skipped[0]`)."""
    for path in paths:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    record = None
                if not isinstance(record, dict):
                    logger.warning("%s:%d: not a JSON record (truncated write?), skipped", path, number)
                    if skipped is not None:
                        skipped[0] += 1
                    continue
                yield record


def load_logs(
    folder: Path | str, spec: FeatureSpec, since: datetime | None = None, until: datetime | None = None
) -> PredictionLog:
    """Both tables from the log files under `folder`, records in [since, until), sorted by time."""
    window = TimeWindow(since, until)
    files = log_files(folder, window)
    skipped = [0]
    records = iter_records(files, skipped)
    if since is not None or until is not None:
        records = (r for r in records if _in_window(r, window))
    return _tables(records, spec, tuple(files), skipped, str(folder), window)


def _in_window(record: dict[str, Any], window: TimeWindow) -> bool:
    try:
        return window.contains(datetime.fromisoformat(record["ts"]))
    except (KeyError, TypeError, ValueError):
        return False


def load_store(
    url: str, spec: FeatureSpec, since: datetime | None = None, until: datetime | None = None
) -> PredictionLog:
    """Both tables from a PostgreSQL decision store (its `decisions` table), records in [since, until)."""
    import psycopg

    window = TimeWindow(since, until)
    source = describe_database_url(url)
    query = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE ts >= %s AND ts < %s ORDER BY ts, request_id, batch_index"
    bounds = (since or datetime.min.replace(tzinfo=UTC), until or datetime.max.replace(tzinfo=UTC))
    try:
        connection = psycopg.connect(url, connect_timeout=10)
    except psycopg.OperationalError:
        raise NoLogsError(f"cannot connect to the decision store {source}") from None
    with connection, connection.cursor(name="monitoring_window") as cursor:  # server-side: streamed
        cursor.itersize = 5000
        cursor.execute(query, bounds)
        records = (_store_record(row) for row in cursor)
        return _tables(records, spec, (), [0], source, window)


def _store_record(row: tuple[Any, ...]) -> dict[str, Any]:
    record = dict(zip(COLUMNS, row, strict=True))
    record["ts"] = record["ts"].isoformat()
    if record["error"] is None:
        record.pop("error_fields")
    for name in ("challenger_version", "challenger_probability", "challenger_prediction"):
        if record[name] is None:  # as in a JSONL record without a challenger: absent
            record.pop(name)
    return record


def _tables(
    records: Iterator[dict[str, Any]],
    spec: FeatureSpec,
    files: tuple[Path, ...],
    skipped: list[int],
    source: str,
    window: TimeWindow,
) -> PredictionLog:
    inputs: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    requests: dict[tuple[str, str], dict[str, Any]] = {}
    for number, record in enumerate(records):
        # A batch writes one line per applicant, all with its request id: keep one per request
        # (a record without an id counts on its own).
        key = (str(record.get("request_id") or f"#{number}"), str(record.get("endpoint")))
        if key not in requests:
            requests[key] = {name: record.get(name) for name in REQUEST_COLUMNS}
        if isinstance(record.get("inputs"), dict) and record.get("error") is None:
            inputs.append(record["inputs"])
            meta.append({name: record.get(name) for name in META_COLUMNS})

    predictions = typed_frame(
        pd.concat(
            [
                pd.DataFrame.from_records(inputs, columns=spec.names),
                pd.DataFrame.from_records(meta, columns=META_COLUMNS),
            ],
            axis=1,
        ),
        spec,
    )
    request_table = pd.DataFrame.from_records(list(requests.values()), columns=REQUEST_COLUMNS)
    for table in (predictions, request_table):
        table["ts"] = pd.to_datetime(table["ts"], utc=True, format="ISO8601")
        numbers = ("status", "latency_ms", "model_latency_ms", "batch_size", PROBABILITY, PREDICTION)
        for name in (*numbers, "challenger_probability", "challenger_prediction"):
            if name in table:
                table[name] = pd.to_numeric(table[name], errors="coerce")
        table.sort_values("ts", inplace=True, kind="stable")
        table.reset_index(drop=True, inplace=True)
    return PredictionLog(predictions, request_table, files, skipped[0], source, window)


def load_decisions(
    spec: FeatureSpec,
    *,
    logs: Path | str | None = None,
    db: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> PredictionLog:
    """From PostgreSQL when `db` is given, else from the JSONL folder `logs`."""
    if db:
        return load_store(db, spec, since, until)
    if logs is None:
        raise NoLogsError("no decision store: give a log folder or a database URL")
    return load_logs(logs, spec, since, until)
