"""What recording one decision costs the request, per backend (group `decision-record`).

`record()` runs on the request path before the answer is sent: one orjson encoding of the
record (~3.3 KB for a full applicant) and one `os.write` to an `O_APPEND` descriptor. With
PostgreSQL the same call is made while the shipper thread empties the files into a real local
server (tests/inference/decisions/conftest.py). `queue-put (old log)` is the former background-thread log's
request-side cost for comparison: cheaper at the call, but its formatting then ran on a thread
competing for the GIL, and a SIGKILL lost what was queued.
"""

from __future__ import annotations

import itertools
import queue
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from benchmarks.conftest import Served
from contract.records import Decision
from contract.requests import build_request_models
from inference.decisions import DecisionRecorder, open_recorder
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings
from scripts.pg_cluster import LocalPostgres


@pytest.fixture(scope="module")
def decisions(served: Served) -> list[Decision]:
    models = build_request_models(served.spec, max_batch_size=1000)
    validated = [models.parse_applicant(body).__dict__ for body in served.bodies]
    return [
        Decision(time.time(), uuid.uuid4().hex, "/predict", 200, 0.001, "1", 0.00005, 0.31, [v], [0.2], [0])
        for v in validated
    ]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    cluster = LocalPostgres(tempfile.mkdtemp(prefix="bench-pg-", dir="/tmp"))
    cluster.start()
    try:
        yield cluster.create_database("bench")
    finally:
        cluster.remove()


def _recorder(folder: Path, url: str | None) -> DecisionRecorder:
    settings = DecisionStoreSettings(_env_file=None, prediction_log_dir=folder, database_url=url)  # type: ignore[call-arg]
    recorder = open_recorder(settings, Metrics())
    recorder.start()
    return recorder


def _unique(decisions: list[Decision]) -> Any:
    """A fresh request id per call (the database keeps one row per id)."""
    source = itertools.cycle(decisions)

    def next_decision() -> Decision:
        d = next(source)
        return Decision(d.ts, uuid.uuid4().hex, d.endpoint, d.status, d.latency_s, d.model_version,
                        d.model_latency_s, d.threshold, d.inputs, d.probabilities, d.predictions)  # fmt: skip

    return next_decision


@pytest.mark.benchmark(group="decision-record")
def test_record_jsonl(benchmark: Any, decisions: list[Decision], tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, None)
    source = itertools.cycle(decisions)
    benchmark(lambda: recorder.record(next(source)))
    recorder.close(5.0)
    lines = sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("*.jsonl"))
    assert lines >= benchmark.stats.stats.rounds
    size = sum(p.stat().st_size for p in tmp_path.glob("*.jsonl")) / lines
    benchmark.extra_info["bytes_per_record"] = round(size)


@pytest.mark.benchmark(group="decision-record")
def test_record_postgres(benchmark: Any, decisions: list[Decision], tmp_path: Path, postgres_url: str) -> None:
    recorder = _recorder(tmp_path, postgres_url)
    make = _unique(decisions)
    benchmark(lambda: recorder.record(make()))
    recorder.close(30.0)
    assert list(tmp_path.glob("*.jsonl")) == []  # everything shipped


@pytest.mark.benchmark(group="decision-record")
def test_queue_put_old_log(benchmark: Any, decisions: list[Decision]) -> None:
    q: queue.SimpleQueue[Decision] = queue.SimpleQueue()
    source = itertools.cycle(decisions)
    benchmark(lambda: q.put(next(source)))
    assert q.qsize() >= benchmark.stats.stats.rounds


@pytest.mark.benchmark(group="decision-record")
def test_format_only(benchmark: Any, decisions: list[Decision]) -> None:
    """The encoding part of record() alone."""
    source = itertools.cycle(decisions)
    option = orjson.OPT_APPEND_NEWLINE
    benchmark(lambda: b"".join(orjson.dumps(r, option=option) for r in next(source).records()))
