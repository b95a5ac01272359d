"""The monitoring report: production log vs reference sample -> HTML report + JSON summary.

What `python -m monitoring drift` and the notebook run; each step lives in its own module
(logs, artifacts, drift, performance), this one only wires them and writes the files.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from monitoring import summary_page
from monitoring.artifacts import DEFAULT_MODEL, PREDICTION, load_feature_spec, load_reference
from monitoring.drift import DriftConfig, DriftResult, details_snapshot, run_drift
from monitoring.groups import refusal_by_group
from monitoring.logs import PredictionLog, load_decisions
from monitoring.performance import traffic_summary

HTML_NAME = "drift_report.html"
"""The page to open (and mail): verdict first, tens of kB (`monitoring.summary_page`)."""
DETAILS_NAME = "drift_details.html"
"""Evidently's report on the drifted columns and the score only (its JavaScript alone is 3.7 MB)."""
SUMMARY_NAME = "drift_summary.json"
GROUP_WINDOW = "1D"
"""Time window of the refusal rates by group in the summary."""


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
    logs: Path | str | None,
    reference: Path | str,
    out_dir: Path | str | None = None,
    model: Path | str | None = DEFAULT_MODEL,
    config: DriftConfig | None = None,
    *,
    detailed: bool = True,
    db: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> MonitoringReport:
    """Read the decisions of the window (JSONL `logs`, or PostgreSQL `db`) and the reference, run
    the drift report, and write its files to `out_dir`.

    drift_report.html (the verdict page, which names the window and source it covers),
    drift_summary.json and, when a column or the score was tested in detail, drift_details.html
    (Evidently's figures for those only).
    """
    spec = load_feature_spec(model)
    log = load_decisions(spec, logs=logs, db=db, since=since, until=until)
    if log.predictions.empty:
        raise NoScoredRecordsError(
            f"{len(log.requests)} requests in {log.source} {log.window.describe()} but no scored applicant to compare"
        )
    reference_frame = load_reference(reference, spec)
    drift = run_drift(reference_frame, log.predictions, spec, config, detailed=detailed)
    traffic = traffic_summary(log)
    if PREDICTION in reference_frame:
        traffic["reference_decision_rate"] = round(float(reference_frame[PREDICTION].mean()), 6)
    summary = {
        **drift.summary,
        "traffic": traffic,
        "refusal_by_group": refusal_by_group(log.predictions, GROUP_WINDOW),
        "window": log.window.as_dict(),
        "sources": {
            "logs": None if db else str(logs),
            "decisions": log.source,
            "reference": str(reference),
            "model": str(model) if model else None,
        },
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
        _label_html(report.html_path, f"Decisions from {log.source}, {log.window.describe()} (UTC)")
        report.summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    return report


def _label_html(path: Path, text: str) -> None:
    """Put the window and source the report covers at the top of Evidently's page."""
    page = path.read_text(encoding="utf-8")
    banner = f'<p style="font-family:sans-serif;margin:8px 16px" id="monitoring-window">{html.escape(text)}</p>'
    head, body, rest = page.partition("<body>")
    path.write_text(f"{head}{body}{banner}{rest}" if body else banner + page, encoding="utf-8")
