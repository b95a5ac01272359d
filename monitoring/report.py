"""The monitoring report: production log vs reference sample -> HTML report + JSON summary.

What `python -m monitoring drift` and the notebook run; each step lives in its own module
(logs, artifacts, drift, performance), this one only wires them and writes the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring import summary_page
from monitoring.artifacts import DEFAULT_MODEL, PREDICTION, load_feature_spec, load_reference
from monitoring.drift import DriftConfig, DriftResult, details_snapshot, run_drift
from monitoring.logs import PredictionLog, load_logs
from monitoring.performance import traffic_summary

HTML_NAME = "drift_report.html"
"""The page to open (and mail): verdict first, tens of kB (`monitoring.summary_page`)."""
DETAILS_NAME = "drift_details.html"
"""Evidently's report on the drifted columns and the score only (its JavaScript alone is 3.7 MB)."""
SUMMARY_NAME = "drift_summary.json"


class NoScoredRecordsError(ValueError):
    """The log holds requests but no scored applicant: nothing to compare."""


@dataclass
class MonitoringReport:
    log: PredictionLog
    reference: pd.DataFrame
    drift: DriftResult
    summary: dict[str, Any]
    html_path: Path | None = None
    details_path: Path | None = None
    summary_path: Path | None = None


def build_report(
    logs: Path | str,
    reference: Path | str,
    out_dir: Path | str | None = None,
    model: Path | str | None = DEFAULT_MODEL,
    config: DriftConfig | None = None,
    *,
    detailed: bool = True,
) -> MonitoringReport:
    """Read the logs and the reference, run the drift report, and write its files to `out_dir`.

    drift_report.html (the verdict page), drift_summary.json and, when a column or the score
    was tested in detail, drift_details.html (Evidently's figures for those only).
    """
    spec = load_feature_spec(model)
    log = load_logs(logs, spec)
    if log.predictions.empty:
        raise NoScoredRecordsError(f"{len(log.requests)} requests in {logs} but no scored applicant to compare")
    reference_frame = load_reference(reference, spec)
    drift = run_drift(reference_frame, log.predictions, spec, config, detailed=detailed)
    traffic = traffic_summary(log)
    if PREDICTION in reference_frame:
        traffic["reference_decision_rate"] = round(float(reference_frame[PREDICTION].mean()), 6)
    summary = {
        **drift.summary,
        "traffic": traffic,
        "sources": {"logs": str(logs), "reference": str(reference), "model": str(model) if model else None},
    }
    report = MonitoringReport(log, reference_frame, drift, summary)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.html_path = out / HTML_NAME
        report.summary_path = out / SUMMARY_NAME
        details = details_snapshot(reference_frame, log.predictions, spec, summary) if detailed else None
        (out / DETAILS_NAME).unlink(missing_ok=True)  # never a stale one beside a new verdict
        if details is not None:
            report.details_path = out / DETAILS_NAME
            details.save_html(str(report.details_path))
        report.html_path.write_text(summary_page.render(summary, DETAILS_NAME if details is not None else None))
        report.summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return report
