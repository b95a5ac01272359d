"""Read the service's JSONL prediction log (docs/CONTRACTS.md) into pandas tables.

A log folder holds one file per process and UTC day (`predictions-<day>-<host>-<pid>.jsonl`),
possibly gathered from several machines into sub-folders; all of them are read, in one pass,
into two tables:

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
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from contract.spec import FeatureSpec
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
class PredictionLog:
    predictions: pd.DataFrame
    requests: pd.DataFrame
    files: tuple[Path, ...]
    skipped_lines: int

    @property
    def error_rate(self) -> float:
        """Share of requests answered with a status >= 400 (0 when there are none)."""
        if self.requests.empty:
            return 0.0
        return float((self.requests["status"] >= 400).mean())


def log_files(folder: Path | str) -> list[Path]:
    """The prediction log files under `folder` (or `folder` itself if it is a file), sorted."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise NoLogsError(f"log folder not found: {folder}")
    files = sorted(folder.rglob(LOG_PATTERN))
    if not files:
        raise NoLogsError(f"no prediction log files ({LOG_PATTERN}) under {folder}")
    return files


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


def load_logs(folder: Path | str, spec: FeatureSpec) -> PredictionLog:
    """Both tables from every log file under `folder`, sorted by time."""
    files = log_files(folder)
    skipped = [0]
    inputs: list[dict[str, Any]] = []
    meta: list[dict[str, Any]] = []
    requests: dict[tuple[str, str], dict[str, Any]] = {}
    for number, record in enumerate(iter_records(files, skipped)):
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
        for name in ("status", "latency_ms", "model_latency_ms", "batch_size", PROBABILITY, PREDICTION):
            if name in table:
                table[name] = pd.to_numeric(table[name], errors="coerce")
        table.sort_values("ts", inplace=True, kind="stable")
        table.reset_index(drop=True, inplace=True)
    return PredictionLog(predictions, request_table, tuple(files), skipped[0])


def read_predictions(folder: Path | str, spec: FeatureSpec) -> pd.DataFrame:
    """One row per scored applicant: the spec's inputs (typed), then the log's metadata."""
    return load_logs(folder, spec).predictions


def read_requests(folder: Path | str, spec: FeatureSpec) -> pd.DataFrame:
    """One row per request, rejected ones included (status, latency_ms, error, ...)."""
    return load_logs(folder, spec).requests
