"""Scored decision records for the monitoring tests: synthetic applicants as the service records them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from contract.records import Decision

THRESHOLD = 0.08


def scored_decisions(
    payloads: Sequence[Mapping[str, Any]], probabilities: Sequence[float], start: float, step: float, prefix: str
) -> list[Decision]:
    """One 200 decision per applicant, `step` seconds apart from `start`, ids `<prefix><i>`."""
    return [
        Decision(
            ts=start + i * step,
            request_id=f"{prefix}{i}",
            endpoint="/predict",
            status=200,
            latency_s=0.002,
            model_version="1",
            model_latency_s=0.0004,
            threshold=THRESHOLD,
            inputs=[payload],
            probabilities=[float(p)],
            predictions=[int(p >= THRESHOLD)],
        )
        for i, (payload, p) in enumerate(zip(payloads, probabilities, strict=True))
    ]
