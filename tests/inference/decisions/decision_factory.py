"""Decisions for the decision-store tests: scored singles, batches and rejected calls."""

from __future__ import annotations

import time
import uuid
from typing import Any

from contract.records import Decision


def scored(ts: float | None = None, size: int = 1, inputs: dict[str, Any] | None = None) -> Decision:
    row = inputs or {"AMT_INCOME_TOTAL": 135000.0, "NAME_CONTRACT_TYPE": "Cash loans", "EXT_SOURCE_1": None}
    return Decision(
        ts=time.time() if ts is None else ts,
        request_id=uuid.uuid4().hex,
        endpoint="/predict" if size == 1 else "/predict/batch",
        status=200,
        latency_s=0.0012,
        model_version="7",
        model_latency_s=0.00005,
        threshold=0.31,
        inputs=[{**row, "note": f'quote " back\\slash tab\t {i}'} for i in range(size)],
        probabilities=[0.1 + i / (10 * size) for i in range(size)],
        predictions=[i % 2 for i in range(size)],
    )


def rejected(ts: float | None = None) -> Decision:
    return Decision(
        ts=time.time() if ts is None else ts,
        request_id=uuid.uuid4().hex,
        endpoint="/predict",
        status=422,
        latency_s=0.0004,
        model_version="7",
        error="validation_error",
        error_fields=("AMT_INCOME_TOTAL", "CODE_GENDER"),
    )


def mixed(n: int) -> list[Decision]:
    """n decisions: mostly single scores, some batches of 3, some rejections."""
    return [scored(size=3) if i % 10 == 3 else rejected() if i % 10 == 7 else scored() for i in range(n)]


def record_count(decisions: list[Decision]) -> int:
    return sum(1 for d in decisions for _ in d.records())
