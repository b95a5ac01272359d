"""Service health from the prediction log: latency percentiles, error rate, decisions.

Latency and errors are counted per request (a batch is one request); decisions and scores
per scored applicant.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from monitoring.artifacts import PREDICTION, PROBABILITY
from monitoring.logs import PredictionLog

PERCENTILES = (50, 95, 99)


def latency_percentiles(latencies: pd.Series) -> dict[str, float | None]:
    """p50/p95/p99 of a latency series in ms (None when empty)."""
    values = latencies.dropna()
    return {f"p{q}": (round(float(values.quantile(q / 100)), 3) if len(values) else None) for q in PERCENTILES}


def latency_over_time(requests: pd.DataFrame, freq: str = "1min") -> pd.DataFrame:
    """Latency percentiles, request count and error rate per time bucket (for plots)."""
    if requests.empty:
        return pd.DataFrame(columns=["requests", "error_rate", *(f"p{q}" for q in PERCENTILES)])
    grouped = requests.set_index("ts").groupby(pd.Grouper(freq=freq))
    table = pd.DataFrame(
        {
            "requests": grouped["status"].size(),
            "error_rate": grouped["status"].apply(lambda s: float((s >= 400).mean()) if len(s) else float("nan")),
        }
    )
    for q in PERCENTILES:
        table[f"p{q}"] = grouped["latency_ms"].quantile(q / 100)
    return table[table["requests"] > 0]


def traffic_summary(log: PredictionLog) -> dict[str, Any]:
    """Counts, error rate, latency percentiles, decision rate and score statistics of a log."""
    requests, predictions = log.requests, log.predictions
    scored = requests[requests["status"] < 400]
    summary: dict[str, Any] = {
        "source": log.source,
        "window": log.window.as_dict(),  # what was asked for; first_ts/last_ts: what it held
        "files": len(log.files),
        "skipped_lines": log.skipped_lines,
        "requests": len(requests),
        "scored_applicants": len(predictions),
        "first_ts": requests["ts"].min().isoformat() if len(requests) else None,
        "last_ts": requests["ts"].max().isoformat() if len(requests) else None,
        "status_counts": {str(int(k)): int(v) for k, v in requests["status"].value_counts().sort_index().items()},
        "error_rate": round(log.error_rate, 6),
        "errors_by_kind": {str(k): int(v) for k, v in requests["error"].dropna().value_counts().items()},
        "latency_ms": latency_percentiles(requests["latency_ms"]),
        "latency_ms_scored": latency_percentiles(scored["latency_ms"]),
        "model_latency_ms": latency_percentiles(scored["model_latency_ms"]),
        "by_endpoint": {
            str(endpoint): {
                "requests": len(group),
                "error_rate": round(float((group["status"] >= 400).mean()), 6),
                "latency_ms": latency_percentiles(group["latency_ms"]),
            }
            for endpoint, group in requests.groupby("endpoint")
        },
    }
    if len(predictions):
        summary["decision_rate"] = round(float(predictions[PREDICTION].mean()), 6)
        summary["probability"] = {
            "mean": round(float(predictions[PROBABILITY].mean()), 6),
            **{f"p{q}": round(float(predictions[PROBABILITY].quantile(q / 100)), 6) for q in PERCENTILES},
        }
        versions = predictions["model_version"].dropna().unique()
        summary["model_versions"] = sorted(str(v) for v in versions)
    else:
        summary["decision_rate"] = None
        summary["probability"] = None
    return summary
