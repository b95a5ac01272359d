"""Reading the prediction log: several files (days, hosts, processes), batches, errors, bad lines.

The records are made by the service's own `Decision.records()`, so these tests read exactly
what the API writes (docs/CONTRACTS.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from contract.records import Decision
from monitoring.artifacts import load_feature_spec
from monitoring.logs import NoLogsError, load_logs, log_files
from monitoring.performance import latency_over_time, traffic_summary
from monitoring.simulate import draw_applicants, to_payloads

SPEC = load_feature_spec(None)  # the training schema's spec: no artifact needed


def _ts(day: int, second: int) -> float:
    return datetime(2026, 11, day, 10, 0, second, tzinfo=UTC).timestamp()


def _scored(request_id: str, ts: float, applicants: list[dict], endpoint: str = "/predict") -> Decision:
    n = len(applicants)
    return Decision(
        ts=ts,
        request_id=request_id,
        endpoint=endpoint,
        status=200,
        latency_s=0.002 + 0.001 * n,
        model_version="1",
        model_latency_s=0.0005,
        threshold=0.08,
        inputs=applicants,
        probabilities=[0.05 * (i + 1) for i in range(n)],
        predictions=[i % 2 for i in range(n)],
    )


def _rejected(request_id: str, ts: float, status: int, error: str) -> Decision:
    return Decision(
        ts=ts,
        request_id=request_id,
        endpoint="/predict",
        status=status,
        latency_s=0.0004,
        model_version="1",
        error=error,
        error_fields=["AMT_INCOME_TOTAL"] if status == 422 else [],
    )


def _write(path: Path, entries: list[Decision], tail: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [orjson.dumps(record) + b"\n" for entry in entries for record in entry.records()]
    path.write_bytes(b"".join(lines) + tail)


@pytest.fixture()
def log_dir(tmp_path: Path) -> Path:
    applicants = to_payloads(draw_applicants(8, seed=3, spec=SPEC), SPEC)
    applicants[1] = {k: v for k, v in applicants[1].items() if k != "EXT_SOURCE_1"}  # absent -> missing
    applicants[2] = {**applicants[2], "OCCUPATION_TYPE": None}  # null -> missing
    folder = tmp_path / "logs"
    # Two days of process 11 on host a, one day of process 12 on host b (in a sub-folder, as
    # when logs from several machines are gathered), and a killed writer's truncated last line.
    _write(
        folder / "predictions-2026-11-24-a-11.jsonl",
        [
            _scored("r1", _ts(24, 1), applicants[0:1]),
            _rejected("r2", _ts(24, 2), 401, "unauthorized"),
        ],
    )
    _write(
        folder / "predictions-2026-11-25-a-11.jsonl",
        [
            _scored("r3", _ts(25, 1), applicants[1:4], endpoint="/predict/batch"),
            _rejected("r4", _ts(25, 3), 422, "validation_error"),
        ],
        tail=b'{"ts": "2026-11-25T10:00:09+00:00", "request_id": "r9", "inp',
    )
    _write(
        folder / "host-b" / "predictions-2026-11-24-b-12.jsonl",
        [
            _scored("r5", _ts(24, 5), applicants[4:5]),
            _scored("r6", _ts(24, 0), applicants[5:6]),  # written out of order
        ],
    )
    (folder / "notes.txt").write_text("not a log")
    return folder


def test_reads_every_file_once_per_applicant_and_request(log_dir: Path) -> None:
    log = load_logs(log_dir, SPEC)

    assert len(log.files) == 3
    assert log.skipped_lines == 1  # the truncated line, and nothing else
    assert len(log.predictions) == 6  # 1 + 3 (batch) + 2
    assert len(log.requests) == 6  # the batch is one request; two rejected calls
    assert log.predictions["request_id"].tolist().count("r3") == 3
    assert log.predictions["batch_index"][log.predictions["request_id"] == "r3"].tolist() == [0, 1, 2]
    assert log.predictions["ts"].is_monotonic_increasing
    assert log.predictions["request_id"].iloc[0] == "r6"


def test_columns_are_typed_by_the_spec(log_dir: Path) -> None:
    predictions = load_logs(log_dir, SPEC).predictions

    assert predictions.columns[: len(SPEC)].tolist() == SPEC.names
    for feature in SPEC.features:
        column = predictions[feature.name]
        if feature.is_categorical:
            assert column.dtype == object
            assert all(isinstance(v, str) for v in column.dropna())
        else:
            assert column.dtype == np.float64
    for name in ("latency_ms", "model_latency_ms", "probability", "prediction", "status"):
        assert np.issubdtype(predictions[name].dtype, np.number)
    assert str(predictions["ts"].dt.tz) == "UTC"
    batch = predictions[predictions["request_id"] == "r3"].reset_index(drop=True)
    assert np.isnan(batch.loc[0, "EXT_SOURCE_1"])  # absent from the request
    assert batch["OCCUPATION_TYPE"].isna()[1]  # sent as null


def test_requests_carry_errors_and_latency(log_dir: Path) -> None:
    log = load_logs(log_dir, SPEC)
    requests = log.requests

    assert sorted(requests["status"].tolist()) == [200, 200, 200, 200, 401, 422]
    assert log.error_rate == pytest.approx(2 / 6)
    assert set(requests["error"].dropna()) == {"unauthorized", "validation_error"}
    summary = traffic_summary(log)
    assert summary["status_counts"] == {"200": 4, "401": 1, "422": 1}
    assert summary["scored_applicants"] == 6
    assert summary["decision_rate"] == pytest.approx(log.predictions["prediction"].mean(), abs=1e-6)
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]
    assert summary["by_endpoint"]["/predict/batch"]["requests"] == 1
    over_time = latency_over_time(requests, freq="1D")
    assert over_time["requests"].sum() == 6
    assert set(over_time.columns) >= {"p50", "p95", "p99", "error_rate"}


def test_a_folder_without_logs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NoLogsError, match="no prediction log files"):
        log_files(tmp_path)
    with pytest.raises(NoLogsError, match="not found"):
        log_files(tmp_path / "absent")


def test_a_log_of_rejected_calls_only_has_no_predictions(tmp_path: Path) -> None:
    _write(tmp_path / "predictions-2026-11-24-a-1.jsonl", [_rejected("r1", _ts(24, 1), 401, "unauthorized")])
    log = load_logs(tmp_path, SPEC)

    assert log.predictions.empty
    assert log.predictions.columns[: len(SPEC)].tolist() == SPEC.names
    assert log.error_rate == 1.0
    assert traffic_summary(log)["decision_rate"] is None
