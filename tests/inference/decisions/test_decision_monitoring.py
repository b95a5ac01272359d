"""Monitoring reads either store by time window, and says which window and store it read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from contract.records import Decision
from inference.decisions import open_recorder
from inference.decisions.segments import SegmentWriter
from inference.metrics import Metrics
from inference.settings import DecisionStoreSettings
from monitoring.artifacts import load_feature_spec
from monitoring.logs import load_logs, load_store
from monitoring.simulate import to_payloads
from tests.decisions import scored_decisions
from training.synthetic import TRUE_PROBABILITY_COLUMN, generate

REPO = Path(__file__).resolve().parents[3]
SPEC = load_feature_spec(None)
START = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)  # two hours across a UTC midnight


def _decisions(n: int = 240) -> list[Decision]:
    raw = generate(n, seed=3)
    payloads = to_payloads(raw, SPEC)
    step = 7200 / n
    decisions = scored_decisions(payloads, raw[TRUE_PROBABILITY_COLUMN], START.timestamp(), step, "r")
    decisions.append(
        Decision(
            START.timestamp() + 100,
            "bad",
            "/predict",
            422,
            0.0003,
            "1",
            error="validation_error",
            error_fields=("AMT_CREDIT",),
        )  # fmt: skip
    )
    return decisions


@pytest.fixture(scope="module")
def stores(postgres: object, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The same decisions in a JSONL folder and in a PostgreSQL store."""
    from scripts.pg_cluster import LocalPostgres

    assert isinstance(postgres, LocalPostgres)
    url = postgres.create_database("monitoring_window")
    jsonl = tmp_path_factory.mktemp("jsonl")
    writer = SegmentWriter(jsonl)
    writer.start()
    settings = DecisionStoreSettings(
        _env_file=None, database_url=url, prediction_log_dir=tmp_path_factory.mktemp("buffer")
    )  # type: ignore[call-arg]
    recorder = open_recorder(settings, Metrics())
    recorder.start()
    for decision in _decisions():
        writer.write(decision)
        recorder.record(decision)
    writer.close()
    recorder.close(10.0)
    return jsonl, url


def test_both_stores_give_the_same_tables_for_a_window(stores: tuple[Path, str]) -> None:
    jsonl, url = stores
    since, until = START + timedelta(minutes=30), START + timedelta(minutes=90)  # across midnight
    from_files = load_logs(jsonl, SPEC, since, until)
    from_db = load_store(url, SPEC, since, until)
    assert len(from_files.predictions) == 120 and len(from_files.requests) == 120
    assert from_files.predictions["ts"].min() >= since and from_files.predictions["ts"].max() < until
    columns = [*SPEC.names, "ts", "request_id", "probability", "prediction", "model_version", "latency_ms"]
    pd.testing.assert_frame_equal(from_files.predictions[columns], from_db.predictions[columns], check_dtype=False)
    everything = load_store(url, SPEC)
    assert len(everything.requests) == 241 and (everything.requests["status"] == 422).sum() == 1
    assert everything.requests.loc[everything.requests["status"] == 422, "error_fields"].iloc[0] == ["AMT_CREDIT"]
    assert from_db.source.startswith("postgresql://postgres@127.0.0.1:") and "@" in from_db.source
    assert from_db.window.as_dict() == {"since": since.isoformat(), "until": until.isoformat()}


def test_the_drift_command_reads_the_database_for_a_window(stores: tuple[Path, str], tmp_path: Path) -> None:
    _, url = stores
    out = tmp_path / "reports"
    since, until = "2026-11-25T23:00:00", "2026-11-26T00:00:00+00:00"
    command = [sys.executable, "-m", "monitoring", "drift", "--db", url, "--since", since, "--until", until,
               "--quick", "--out", str(out), "--model", "no-such-model.onnx"]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=os.environ, check=False)
    assert result.returncode in (0, 1), result.stderr
    summary = json.loads((out / "drift_summary.json").read_text())
    assert summary["window"] == {"since": "2026-11-25T23:00:00+00:00", "until": "2026-11-26T00:00:00+00:00"}
    assert summary["traffic"]["requests"] == 121 and summary["current_rows"] == 120
    assert summary["sources"]["decisions"] == summary["traffic"]["source"] and "@127.0.0.1" in result.stdout
    password = url.split(":")[2].split("@")[0]
    assert password not in result.stdout + result.stderr + (out / "drift_summary.json").read_text()
    page = (out / "drift_report.html").read_text()
    assert "2026-11-25T23:00:00+00:00 to 2026-11-26T00:00:00+00:00" in page


def test_an_empty_window_is_a_usage_error(stores: tuple[Path, str]) -> None:
    _, url = stores
    from monitoring.__main__ import EXIT_USAGE, main

    assert main(["drift", "--db", url, "--since", "2026-11-26", "--until", "2026-11-25"]) == EXIT_USAGE
    assert main(["drift", "--db", url, "--since", "2020-01-01", "--until", "2020-01-02", "--quick"]) == EXIT_USAGE
