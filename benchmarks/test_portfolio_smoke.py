"""Smoke test of `python -m benchmarks.portfolio`: a few thousand rows, the job and the loop.

The numbers of a run this small are Spark's start-up, not throughput (RESULTS.md has those); this
proves the harness runs end to end, counts every row and that both paths give the same scores.
The spark_udf path needs a registered MLflow model and a second JVM: it runs in the full benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.portfolio import main


@pytest.mark.slow
def test_portfolio_benchmark_runs_the_job_and_the_loop(tmp_path: Path) -> None:
    out = tmp_path / "portfolio.json"
    argv = ["--rows", "3000", "--master", "local[2]", "--paths", "job,loop", "--repeat", "2", "--out", str(out)]
    assert main(argv) == 0
    summary = json.loads(out.read_text())
    job, loop = summary["paths"]["job"], summary["paths"]["loop"]
    assert job["rows"] == loop["rows"] == 3000
    assert job["scored"] + job["rejected"] == 3000 and job["scored"] == loop["scored"]
    assert summary["agreement"]["max_abs_diff_job_vs_loop"] == 0.0  # the same code, the same bits
    assert job["peak_rss_mb"] > 0 and job["peak_pss_mb"] > 0 and loop["rows_per_s"] > 0
    assert len(job["rounds_rows_per_s"]) == len(loop["rounds_rows_per_s"]) == 2  # two interleaved rounds
    assert job["rows_per_s"] in job["rounds_rows_per_s"]
    # End to end counts the session's start-up as well: never faster than from the session ready.
    assert job["end_to_end_s"] >= job["seconds"] and job["end_to_end_rows_per_s"] <= job["rows_per_s"]
