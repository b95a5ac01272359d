"""The HTTP harness works: our service under wrk for 2 s at 1 connection, zero errors, percentiles parsed.

The full comparison (service, no-op floor, mlflow serve; 1 and 16 connections) is `make bench`;
this only proves the harness, so CI notices when it breaks. Fails without wrk (apt-get install wrk).
Serves the committed models/credit_scoring.onnx: no MLflow store needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.http_load import run, table
from benchmarks.models import PROJECT_ARTIFACT

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("wrk")  # fails where wrk is missing
def test_harness_measures_our_service(tmp_path: Path) -> None:
    out = tmp_path / "http.json"
    result = run(["service"], duration=2, connections=[1], rounds=1, warmup=0, out=out, model_path=PROJECT_ARTIFACT)
    summary = result["servers"]["service"]["summary"]
    one = result["servers"]["service"]["rounds"][0]["c1"]
    assert out.is_file()
    assert summary["errors"] == 0
    assert one["requests"] > 0
    assert 0 < one["p50_ms"] <= one["p99_ms"] <= one["max_ms"]
    assert summary["time_to_healthy_s"] > 0 and summary["rss_mb_after_load"] > 0
    # Logging was on: every answered request left its record (wrk may cut the very last one).
    assert summary["prediction_records"] >= summary["requests_sent"] - 1
    assert "| service |" in table(result)


@pytest.mark.usefixtures("wrk")  # fails where wrk is missing
def test_harness_compares_refusals_with_and_without_reasons(tmp_path: Path) -> None:
    """The reasons-cost pair: refused applicants only, answered with reasons by the artifact and
    without by its copy stripped of the explainer (each answer is checked for which it is)."""
    servers = ["service-refused", "service-refused-no-reasons"]
    result = run(servers, duration=1, connections=[1], rounds=1, warmup=0, out=None, model_path=PROJECT_ARTIFACT)
    for name in servers:
        assert result["servers"][name]["summary"]["errors"] == 0
        assert result["servers"][name]["rounds"][0]["answers"]["checked"] == 20
    assert result["ratios"]["reasons_over_no_reasons_c1_p50"] > 0
