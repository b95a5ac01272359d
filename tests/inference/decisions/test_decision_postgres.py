"""The PostgreSQL backend on a real server: shipping, idempotence, orphans, outages, bounds, secrets."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from decision_factory import mixed, record_count, rejected, scored

from inference.decisions import open_recorder
from inference.decisions.recorders import PostgresRecorder
from inference.decisions.retention import purge_jsonl, purge_postgres
from inference.decisions.schema import migrate
from inference.decisions.segments import SegmentWriter
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings
from scripts.pg_cluster import LocalPostgres, free_port

REPO = Path(__file__).resolve().parents[3]


def _recorder(url: str, folder: Path, metrics: Metrics | None = None, **overrides: Any) -> PostgresRecorder:
    values: dict[str, Any] = {"database_url": url, "prediction_log_dir": folder, "decision_ship_interval_s": 0.05}
    settings = DecisionStoreSettings(_env_file=None, **{**values, **overrides})  # type: ignore[call-arg]
    recorder = open_recorder(settings, metrics or Metrics())
    assert isinstance(recorder, PostgresRecorder)
    return recorder


def _rows(url: str, query: str = "SELECT count(*) FROM decisions") -> Any:
    with psycopg.connect(url) as connection:
        return connection.execute(query).fetchone()[0]  # type: ignore[index]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


def _dead_url() -> str:
    return f"postgresql://postgres:never-logged-s3cret@127.0.0.1:{free_port()}/nowhere"


def test_migrations_are_versioned_and_idempotent(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        on_disk = sorted(path.stem for path in (REPO / "inference" / "decisions" / "migrations").glob("*.sql"))
        assert on_disk[:4] == ["0001_decisions", "0002_inputs_lz4", "0003_application_and_challenger", "0004_reasons"]
        assert migrate(connection) == on_disk  # every migration, in order
        assert migrate(connection) == []
        versions = connection.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
        compression = connection.execute(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'decisions'::regclass AND attname = 'inputs'"
        ).fetchone()
        indexes = {r[0] for r in connection.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'decisions'")}
    assert versions == [(int(name[:4]), name[5:]) for name in on_disk]
    assert compression == ("l",)  # Debian's server has lz4
    assert {"decisions_ts_idx", "decisions_model_version_ts_idx", "decisions_request_id_batch_index_key"} <= indexes


def test_every_record_is_shipped_with_typed_columns(database_url: str, tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = _recorder(database_url, tmp_path, metrics)
    recorder.start()
    decisions = mixed(300)
    for decision in decisions:
        recorder.record(decision)
    recorder.close(10.0)
    expected = record_count(decisions)
    assert _rows(database_url) == expected == _value(metrics, "decision_records_shipped_total")
    assert _value(metrics, "decision_buffer_bytes") == 0
    assert list(tmp_path.glob("predictions-*.jsonl")) == []  # shipped segments are deleted
    batch = next(d for d in decisions if len(d.inputs) == 3)
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT batch_index, batch_size, endpoint, status, probability, prediction, threshold, inputs, worker, ts"
            " FROM decisions WHERE request_id = %s ORDER BY batch_index",
            (batch.request_id,),
        ).fetchall()
        error = connection.execute(
            "SELECT status, error, error_fields, inputs, batch_index FROM decisions WHERE status = 422 LIMIT 1"
        ).fetchone()
    assert [r[:7] for r in rows] == [
        (i, 3, "/predict/batch", 200, batch.probabilities[i], batch.predictions[i], 0.31) for i in range(3)
    ]
    assert [r[7] for r in rows] == list(batch.inputs)  # jsonb round trip, quotes, backslashes and tabs included
    assert rows[0][8] == f"{os.uname().nodename}-{os.getpid()}"
    assert abs(rows[0][9].timestamp() - batch.ts) < 1e-3
    assert error == (422, "validation_error", ["AMT_INCOME_TOTAL", "CODE_GENDER"], None, 0)


def test_a_replayed_segment_is_stored_once(database_url: str, tmp_path: Path) -> None:
    folder, saved = tmp_path / "buffer", tmp_path / "saved"
    writer = SegmentWriter(folder)
    writer.start()
    decisions = mixed(100)
    for decision in decisions:
        writer.write(decision)
    writer.close()
    shutil.copytree(folder, saved)
    first = _recorder(database_url, folder)
    first.start()
    first.close(10.0)
    assert _rows(database_url) == record_count(decisions)
    shutil.copytree(saved, folder, dirs_exist_ok=True)  # the same records again, no offset: shipped twice
    metrics = Metrics()
    second = _recorder(database_url, folder, metrics)
    second.start()
    second.close(10.0)
    assert _rows(database_url) == record_count(decisions)
    assert _value(metrics, "decision_records_shipped_total") == 0
    assert _rows(database_url, "SELECT count(*) FROM (SELECT DISTINCT request_id, batch_index FROM decisions) d") == (
        record_count(decisions)
    )


_KILLED_WORKER = """
import sys
sys.path[:0] = [{repo!r}, {tests!r}]
from decision_factory import scored
from inference.decisions import open_recorder
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings
recorder = open_recorder(DecisionStoreSettings(_env_file=None, database_url={url!r}, prediction_log_dir={folder!r},
                                               decision_segment_max_bytes=65536), Metrics())
recorder.start()
while True:
    decision = scored()
    recorder.record(decision)
    print(decision.request_id, flush=True)
"""


def _killed_worker(url: str, folder: Path, answers: int) -> list[str]:
    """Run a recording process, SIGKILL it after `answers` records; the request ids it reported."""
    code = _KILLED_WORKER.format(repo=str(REPO), tests=str(Path(__file__).parent), url=url, folder=str(folder))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None
    answered = [process.stdout.readline().strip().decode() for _ in range(answers)]
    process.send_signal(signal.SIGKILL)
    answered += [line.strip().decode() for line in process.stdout.read().splitlines()]
    process.wait()
    return answered


def test_segments_of_a_killed_worker_are_shipped_by_the_next_one(database_url: str, tmp_path: Path) -> None:
    answered = _killed_worker(database_url, tmp_path, 3000)  # killed mid-shipping, segments rotated at 64 KB
    assert len(list(tmp_path.glob("predictions-*.jsonl"))) >= 1
    recorder = _recorder(database_url, tmp_path)
    recorder.start()
    recorder.close(20.0)
    with psycopg.connect(database_url) as connection:
        stored = [r[0] for r in connection.execute("SELECT request_id FROM decisions")]
    assert set(answered) <= set(stored) and len(stored) == len(set(stored))
    assert list(tmp_path.glob("predictions-*.jsonl")) == []


def test_a_live_workers_segment_is_left_to_it(database_url: str, tmp_path: Path) -> None:
    other = SegmentWriter(tmp_path)  # another live worker on the same folder (it holds its lock)
    other.start()
    other.write(scored())
    recorder = _recorder(database_url, tmp_path)
    recorder.start()
    recorder.record(scored())
    recorder.close(10.0)
    assert other.current is not None and other.current.exists()
    assert _rows(database_url) == 1  # only its own record; the other worker ships its own
    other.close()


def test_database_down_scoring_goes_on_and_records_are_shipped_when_it_is_back(
    own_postgres: LocalPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = own_postgres.create_database("outage")
    metrics = Metrics()
    recorder = _recorder(url, tmp_path, metrics)
    recorder.start()
    with caplog.at_level(logging.INFO, logger="inference.decisions"):
        before = mixed(100)
        for decision in before:
            recorder.record(decision)
        _wait_for(lambda: _value(metrics, "decision_buffer_bytes") == 0, "first records shipped")
        own_postgres.stop()
        during = mixed(300)
        for decision in during:
            recorder.record(decision)  # never raises, never waits for the database
        _wait_for(lambda: _value(metrics, "decision_ship_failures_total") > 0, "the outage noticed")
        assert _value(metrics, "decision_buffer_bytes") > 0
        own_postgres.start()
        _wait_for(lambda: _value(metrics, "decision_buffer_bytes") == 0, "the buffer shipped after the outage")
        recorder.close(10.0)
    written = _value(metrics, "decision_records_written_total")
    assert _rows(url) == record_count(before) + record_count(during) == written
    assert _value(metrics, "decision_records_dropped_total", reason="buffer_full") == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any("cannot ship" in m for m in messages) and any("reachable again" in m for m in messages)
    assert own_postgres.password not in caplog.text


def test_the_buffer_is_bounded_and_drops_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    recorder = _recorder(_dead_url(), tmp_path, metrics, decision_buffer_max_bytes=1024 * 1024)
    recorder.start()
    with caplog.at_level(logging.ERROR, logger="inference.decisions"):
        for _ in range(3000):  # ~1.5 MB of records, the database never reachable
            recorder.record(scored())
        recorder.close(0.5)
    on_disk = sum(p.stat().st_size for p in tmp_path.glob("predictions-*.jsonl"))
    dropped = _value(metrics, "decision_records_dropped_total", reason="buffer_full")
    assert dropped > 0 and _value(metrics, "decision_records_written_total") + dropped == 3000
    assert on_disk <= 1024 * 1024
    assert "buffer full" in caplog.text and "not shipped" in caplog.text


def test_the_password_never_appears_in_logs_reprs_or_metrics(
    postgres: LocalPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = postgres.url().replace(postgres.password, "wrong-password-s3cret")
    for url, secret in ((wrong, "wrong-password-s3cret"), (_dead_url(), "never-logged-s3cret")):
        metrics = Metrics()
        with caplog.at_level(logging.DEBUG):
            recorder = _recorder(url, tmp_path / str(len(secret)), metrics)
            recorder.start()
            recorder.record(scored())
            _wait_for(lambda: _value(metrics, "decision_ship_failures_total") > 0, "a failed attempt")  # noqa: B023
            recorder.close(0.2)
        settings = DecisionStoreSettings(_env_file=None, database_url=url)  # type: ignore[call-arg]
        for text in (caplog.text, repr(recorder), recorder.description, metrics.render().decode(), repr(settings)):
            assert secret not in text
    assert "password authentication failed" in caplog.text  # the reason is there, the password is not


def test_an_invalid_database_url_is_refused_without_echoing_it() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        DecisionStoreSettings(_env_file=None, database_url="postgresql://u:pa ss@h:notaport/db x=")  # type: ignore[call-arg]
    assert "not a PostgreSQL URL" in str(refused.value) and "pa ss" not in str(refused.value)


def test_purge_deletes_records_older_than_the_retention(database_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    old, recent = (now - timedelta(days=400)).timestamp(), (now - timedelta(days=10)).timestamp()
    recorder = _recorder(database_url, tmp_path / "buffer")
    recorder.start()
    for ts in (old, old, recent, recent, recent):
        recorder.record(scored(ts=ts))
    recorder.record(rejected(ts=old))
    recorder.close(10.0)
    assert purge_postgres(database_url, 365) == 3
    assert _rows(database_url) == 3 and purge_postgres(database_url, 365) == 0

    folder = tmp_path / "jsonl"
    writer = SegmentWriter(folder)
    writer.start()
    writer.write(scored(ts=old))
    writer.write(scored(ts=recent))  # new day: the old segment is finished
    removed = purge_jsonl(folder, 365)
    assert [p.name[12:22] for p in removed] == [datetime.fromtimestamp(old, UTC).date().isoformat()]
    assert [p.name[12:22] for p in folder.glob("*.jsonl")] == [datetime.fromtimestamp(recent, UTC).date().isoformat()]
    writer.close()


def test_commands_migrate_and_purge(database_url: str, tmp_path: Path) -> None:
    def run(*args: str, url: str = database_url) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DATABASE_URL": url, "PREDICTION_LOG_DIR": str(tmp_path)}
        env.pop("API_KEY", None)  # the store's commands need no API key
        return subprocess.run([sys.executable, "-m", "inference.decisions", *args], env=env, cwd=REPO,
                              capture_output=True, text=True, check=False)  # fmt: skip

    first, second = run("migrate"), run("migrate")
    assert first.returncode == 0 and "applied 0001_decisions, 0002_inputs_lz4, 0003_" in first.stdout
    assert second.returncode == 0 and "up to date" in second.stdout
    assert "@127.0.0.1" in first.stdout and database_url.split(":")[2].split("@")[0] not in first.stdout
    purged = run("purge", "--older-than-days", "30")
    assert purged.returncode == 0 and "0 rows deleted" in purged.stdout
    failed = run("migrate", url=_dead_url())
    assert failed.returncode == 1 and "never-logged-s3cret" not in failed.stderr + failed.stdout
    assert "error:" in failed.stderr


def test_rotated_segments_are_shipped_and_deleted_while_running(database_url: str, tmp_path: Path) -> None:
    metrics = Metrics()
    recorder = _recorder(database_url, tmp_path, metrics, decision_segment_max_bytes=64 * 1024)
    recorder.start()
    decisions = mixed(600)  # ~0.5 MB: about eight 64 KB segments
    for decision in decisions:
        recorder.record(decision)
    expected = record_count(decisions)
    _wait_for(lambda: _value(metrics, "decision_records_shipped_total") == expected, "all shipped before shutdown")
    assert _rows(database_url) == expected
    _wait_for(lambda: len(list(tmp_path.glob("predictions-*.jsonl"))) == 1, "finished segments deleted")
    assert _value(metrics, "decision_buffer_bytes") == 0  # the backlog accounting balances
    recorder.close(10.0)
    assert list(tmp_path.glob("predictions-*")) == []


def test_application_ids_challenger_scores_and_refused_batch_items_are_columns(
    database_url: str, tmp_path: Path
) -> None:
    from dataclasses import dataclass

    from contract.records import Decision

    @dataclass
    class Shadow:
        model_version: str
        probabilities: list[float]
        predictions: list[int]

    decision = Decision(
        ts=time.time(), request_id="batch-1", endpoint="/predict/batch", status=200, latency_s=0.003,
        model_version="7", model_latency_s=0.0002, threshold=0.31, inputs=[{"A": 1}, {"A": 2}],
        probabilities=[0.2, 0.4], predictions=[0, 1], batch_size=3, positions=[0, 2],
        refused_items=[(1, "validation_error", ["CODE_GENDER"])], application_ids=["CE-1", None],
        challenger=Shadow("8", [0.25, 0.35], [0, 1]),
    )  # fmt: skip
    rows = _ship_and_select(
        database_url,
        tmp_path,
        [decision],
        "SELECT batch_index, batch_size, application_id, probability, challenger_version, challenger_probability,"
        " challenger_prediction, error, error_fields, inputs IS NULL FROM decisions ORDER BY batch_index",
    )
    assert rows == [
        (0, 3, "CE-1", 0.2, "8", 0.25, 0, None, None, False),
        (1, 3, None, None, None, None, None, "validation_error", ["CODE_GENDER"], True),
        (2, 3, None, 0.4, "8", 0.35, 1, None, None, False),
    ]


def test_reasons_latencies_and_an_empty_error_list_reach_their_columns(database_url: str, tmp_path: Path) -> None:
    from contract.records import Decision

    reasons = [{"feature": "EXT_SOURCE_3", "value": None, "contribution": 0.41, "text": 'External score "3"\\ missing'}]
    scored = Decision(
        ts=time.time(), request_id="scored-1", endpoint="/predict/batch", status=200, latency_s=0.0031,
        model_version="7", model_latency_s=0.00021, threshold=None, inputs=[{"A": 1}, {"A": None}],
        probabilities=[0.2, 0.4], predictions=[0, 1], reasons=[None, reasons],
    )  # fmt: skip
    rejected = Decision(
        ts=time.time(), request_id="rejected-1", endpoint="/predict", status=401, latency_s=0.0001, model_version="7",
        error="unauthorized",
    )  # fmt: skip
    rows = _ship_and_select(
        database_url,
        tmp_path,
        [scored, rejected],
        "SELECT request_id, batch_index, latency_ms, model_latency_ms, threshold, reasons, error, error_fields,"
        " inputs FROM decisions ORDER BY request_id DESC, batch_index",
    )
    assert rows == [
        ("scored-1", 0, 3.1, 0.21, None, None, None, None, {"A": 1}),
        ("scored-1", 1, 3.1, 0.21, None, reasons, None, None, {"A": None}),
        ("rejected-1", 0, 0.1, None, None, None, "unauthorized", [], None),
    ]


def _ship_and_select(database_url: str, tmp_path: Path, decisions: list[Any], query: str) -> list[tuple[Any, ...]]:
    """Record `decisions`, ship them all (the recorder closed), and return the rows `query` selects."""
    recorder = _recorder(database_url, tmp_path)
    recorder.start()
    for decision in decisions:
        recorder.record(decision)
    recorder.close(10.0)
    with psycopg.connect(database_url) as connection:
        return connection.execute(query).fetchall()
