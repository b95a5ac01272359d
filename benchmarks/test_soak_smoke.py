"""The soak harness works: a few seconds of it, every check evaluated on real counts.

The real soak (10 minutes at 16 connections, JSONL and PostgreSQL) is `python -m benchmarks.soak`;
this proves the harness, so CI notices when it breaks. Fails without wrk (apt-get install wrk).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.models import PROJECT_ARTIFACT
from benchmarks.soak import soak

pytestmark = pytest.mark.slow


@pytest.mark.usefixtures("wrk")  # fails where wrk is missing
def test_soak_counts_every_answer_and_its_record(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = soak(minutes=0.05, connections=4, sample_s=1, store="jsonl", model_path=PROJECT_ARTIFACT, out=out)
    assert out.is_file()
    assert len(result["windows"]) >= 2 and all(w["rss_mb"] > 0 for w in result["windows"])
    assert result["answered_200"] > 0
    # The server answered at least what wrk read, and every answer has its record.
    assert result["answered_200"] >= result["requests_sent"]
    assert result["records"] == result["answered_200"]
    assert all(result["checks"].values()), result["checks"]
