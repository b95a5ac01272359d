"""The local segment writer: a record is in the kernel when write() returns, rotation, locks, failures."""

from __future__ import annotations

import errno
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from decision_factory import mixed, record_count, rejected, scored

from inference.decisions import open_recorder, segments
from inference.decisions.segments import Backlog, SegmentName, SegmentWriter, try_lock
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings

REPO = Path(__file__).resolve().parents[3]


def _lines(directory: Path) -> list[dict]:
    files = sorted(directory.glob("predictions-*.jsonl"))
    return [orjson.loads(line) for path in files for line in path.read_bytes().splitlines()]


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _writer(directory: Path, metrics: Metrics, **options: object) -> SegmentWriter:
    writer = SegmentWriter(
        directory,
        on_written=metrics.records_written.inc,
        on_dropped=lambda reason, count: metrics.records_dropped.labels(reason).inc(count),
        **options,  # type: ignore[arg-type]
    )
    writer.start()
    return writer


def test_a_record_is_in_the_file_as_soon_as_write_returns(tmp_path: Path) -> None:
    metrics = Metrics()
    writer = _writer(tmp_path, metrics)
    decisions = mixed(30)
    for number, decision in enumerate(decisions, start=1):
        writer.write(decision)
        # Read through another descriptor, writer still open: nothing waits in a user-space buffer.
        assert len(_lines(tmp_path)) == record_count(decisions[:number])
    assert _lines(tmp_path) == [record for d in decisions for record in orjson.loads(orjson.dumps(list(d.records())))]
    assert _value(metrics, "decision_records_written_total") == record_count(decisions)
    writer.close()


def test_one_file_per_process_and_utc_day_named_for_the_monitoring_reader(tmp_path: Path) -> None:
    writer = _writer(tmp_path, Metrics())
    day1 = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    writer.write(scored(ts=day1))
    writer.write(scored(ts=day1 + 2))  # 00:00:01 the next day: a new file
    writer.write(rejected(ts=day1 + 3))
    writer.close()
    names = sorted(p.name for p in tmp_path.glob("predictions-*.jsonl"))
    assert [SegmentName.parse(n).day for n in names] == ["2026-11-30", "2026-12-01"]  # type: ignore[union-attr]
    assert {SegmentName.parse(n).pid for n in names} == {os.getpid()}  # type: ignore[union-attr]
    assert [len(p.read_bytes().splitlines()) for p in sorted(tmp_path.glob("predictions-*.jsonl"))] == [1, 2]


def test_a_restarted_process_never_appends_to_an_old_file(tmp_path: Path) -> None:
    first = _writer(tmp_path, Metrics())
    first.write(scored())
    first.close()
    second = _writer(tmp_path, Metrics())  # same pid, same day: as a container restart would be
    second.write(scored())
    assert first.take_closed()[0][0] != second.current
    assert second.current is not None and SegmentName.parse(second.current.name).seq == 1  # type: ignore[union-attr]
    second.close()


def test_the_writer_holds_a_lock_on_its_segment_until_it_closes_it(tmp_path: Path) -> None:
    writer = _writer(tmp_path, Metrics())
    writer.write(scored())
    assert writer.current is not None
    fd = os.open(writer.current, os.O_RDONLY)
    try:
        assert not try_lock(fd)  # live: a shipper must not adopt or delete it
        writer.close()
        assert try_lock(fd)  # finished
    finally:
        os.close(fd)


def test_size_rotation_closes_segments_for_the_shipper(tmp_path: Path) -> None:
    decisions = mixed(40)
    writer = _writer(tmp_path, Metrics(), max_segment_bytes=4_000)
    for decision in decisions:
        writer.write(decision)
    closed = writer.take_closed()
    assert len(closed) >= 3
    assert all(size == path.stat().st_size and size >= 4_000 for path, size in closed)
    writer.close()
    in_order = sorted(tmp_path.glob("*.jsonl"), key=lambda p: SegmentName.parse(p.name).seq)  # type: ignore[union-attr]
    recorded = [orjson.loads(line)["request_id"] for p in in_order for line in p.read_bytes().splitlines()]
    assert recorded == [r["request_id"] for d in decisions for r in d.records()]


def test_an_unwritable_folder_is_counted_and_logged_once_then_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(segments, "_REOPEN_EVERY_S", 0.0)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be")
    metrics = Metrics()
    writer = _writer(blocker / "logs", metrics)
    with caplog.at_level(logging.WARNING, logger="inference.decisions"):
        writer.write(scored(size=5))
        writer.write(scored(size=3))
        writer.write(rejected())
        assert _value(metrics, "decision_records_dropped_total", reason="write_failed") == 5 + 3 + 1
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "blocker" in errors[0].getMessage()
        blocker.unlink()
        writer.write(scored())
    assert len(_lines(blocker / "logs")) == 1
    assert any("again" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    writer.close()


def test_a_full_disk_drops_and_counts_and_never_glues_two_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = Metrics()
    writer = _writer(tmp_path, metrics)
    writer.write(scored())
    real_write = os.write
    state = {"mode": "short"}

    def full_disk(fd: int, data: bytes) -> int:  # what the kernel does on ENOSPC: a short write, then errors
        if state["mode"] == "short":
            state["mode"] = "error"
            return real_write(fd, data[: len(data) // 2])
        if state["mode"] == "error":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(segments.os, "write", full_disk)
    with caplog.at_level(logging.WARNING, logger="inference.decisions"):
        writer.write(scored(size=4))  # two records land, half a line, one lost
        writer.write(scored())
        state["mode"] = "ok"
        writer.write(scored())
    writer.close()
    assert _value(metrics, "decision_records_dropped_total", reason="write_failed") == 2 + 1
    assert _value(metrics, "decision_records_written_total") == 1 + 2 + 1
    lines = (tmp_path / writer.take_closed()[0][0].name).read_bytes().splitlines()
    parsed = [orjson.loads(line) for line in lines if line.endswith(b"}") and line.startswith(b"{")]
    assert len(parsed) == 4 and len(lines) == 5  # the cut line stands alone, the next record is whole
    # One report for the whole outage, one when it is over.
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.WARNING]
    assert "disk full" in caplog.records[0].getMessage()


def test_a_bounded_backlog_drops_and_counts_what_does_not_fit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    backlog = Backlog(limit=20_000)
    writer = _writer(tmp_path, metrics, backlog=backlog)
    with caplog.at_level(logging.ERROR, logger="inference.decisions"):
        for _ in range(100):
            writer.write(scored())
    written = _value(metrics, "decision_records_written_total")
    dropped = _value(metrics, "decision_records_dropped_total", reason="buffer_full")
    assert written + dropped == 100 and dropped > 0 and len(_lines(tmp_path)) == written
    assert backlog.bytes <= 20_000 and backlog.bytes == sum(p.stat().st_size for p in tmp_path.glob("*.jsonl"))
    assert sum("buffer full" in r.getMessage() for r in caplog.records) == 1
    writer.close()


def test_jsonl_is_the_default_recorder(tmp_path: Path) -> None:
    settings = DecisionStoreSettings(_env_file=None, prediction_log_dir=tmp_path)  # type: ignore[call-arg]
    recorder = open_recorder(settings, Metrics())
    recorder.start()
    recorder.record(scored(size=2))
    recorder.close(1.0)
    assert "JSONL" in recorder.description and len(_lines(tmp_path)) == 2


_KILLED_WRITER = """
import sys, time
sys.path[:0] = [{repo!r}, {tests!r}]
from decision_factory import scored
from inference.decisions.segments import SegmentWriter
writer = SegmentWriter({folder!r})
writer.start()
n = 0
while True:
    decision = scored()
    writer.write(decision)
    n += 1
    print(decision.request_id, flush=True)  # "answered" only after write() returned
"""


def test_records_written_before_a_sigkill_are_all_on_disk(tmp_path: Path) -> None:
    code = _KILLED_WRITER.format(repo=str(REPO), tests=str(Path(__file__).parent), folder=str(tmp_path))
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None
    answered = []
    while len(answered) < 2000:
        answered.append(process.stdout.readline().strip().decode())
    process.send_signal(signal.SIGKILL)
    answered += [line.strip().decode() for line in process.stdout.read().splitlines()]
    process.wait()
    recorded = {r["request_id"] for r in _lines(tmp_path)}
    assert set(answered) <= recorded and len(answered) >= 2000
