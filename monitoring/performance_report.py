"""The performance report: decisions + their outcomes -> HTML (Evidently's classification
report, then our per-window table) + JSON summary. What `python -m monitoring performance` runs."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from contract.outcomes import open_outcome_store
from monitoring.artifacts import DEFAULT_MODEL, PREDICTION, PROBABILITY, load_feature_spec, load_reference
from monitoring.logs import load_decisions
from monitoring.outcomes import DEFAULTED, label, read_outcomes
from monitoring.realised import PerformanceConfig, reference_metrics, summarize

HTML_NAME = "performance_report.html"
SUMMARY_NAME = "performance_summary.json"


class NoLabelledDecisionsError(ValueError):
    """No decision of the window has a known outcome: nothing to measure."""


@dataclass
class PerformanceReport:
    labelled: pd.DataFrame
    summary: dict[str, Any]
    html_path: Path | None = None
    summary_path: Path | None = None


def labelled_decisions(
    spec: Any,
    *,
    logs: Path | str | None = None,
    db: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[pd.DataFrame, str]:
    """The window's scored decisions with their outcomes (NaN when not back yet), and the source."""
    log = load_decisions(spec, logs=logs, db=db, since=since, until=until)
    outcomes = read_outcomes(open_outcome_store(logs=logs, db=db))
    return label(log.predictions, outcomes), log.source


def build_performance_report(
    logs: Path | str | None,
    reference: Path | str,
    out_dir: Path | str | None = None,
    model: Path | str | None = DEFAULT_MODEL,
    config: PerformanceConfig | None = None,
    *,
    window: str | None = "1D",
    db: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    evidently: bool = True,
) -> PerformanceReport:
    config = config or PerformanceConfig()
    spec = load_feature_spec(model)
    labelled, source = labelled_decisions(spec, logs=logs, db=db, since=since, until=until)
    if labelled.empty or labelled[DEFAULTED].notna().sum() == 0:
        raise NoLabelledDecisionsError(
            f"{len(labelled)} scored decisions in {source} but none has a known outcome yet "
            "(POST /outcomes or python -m monitoring outcomes load FILE.csv)"
        )
    summary = summarize(labelled, reference_metrics(load_reference(reference, spec)), config, window)
    summary["sources"] = {"decisions": source, "reference": str(reference), "model": str(model) if model else None}
    summary["window"] = {"since": since.isoformat() if since else None, "until": until.isoformat() if until else None}
    report = PerformanceReport(labelled, summary)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.summary_path = out / SUMMARY_NAME
        report.summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        report.html_path = out / HTML_NAME
        _write_html(report.html_path, labelled, summary, source, evidently)
    return report


def _write_html(path: Path, labelled: pd.DataFrame, summary: dict[str, Any], source: str, evidently: bool) -> None:
    known = labelled[labelled[DEFAULTED].notna()]
    if evidently:
        classification_report(known).save_html(str(path))
        page = path.read_text(encoding="utf-8")
    else:
        page = "<html><body></body></html>"
    head, body, rest = page.partition("<body>")
    path.write_text(f"{head}{body}{_banner(summary, source)}{rest}", encoding="utf-8")


def classification_report(known: pd.DataFrame) -> Any:
    """Evidently's classification preset on the labelled decisions (target = defaulted)."""
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.presets import ClassificationPreset

    frame = pd.DataFrame(
        {
            "target": known[DEFAULTED].astype(int).to_numpy(),
            "prediction": known[PREDICTION].astype(int).to_numpy(),
            "probability": known[PROBABILITY].astype(float).to_numpy(),
        }
    )
    definition = DataDefinition(
        classification=[BinaryClassification(target="target", prediction_probas="probability", pos_label=1)],
        numerical_columns=["probability"],
    )
    threshold = float(known["threshold"].dropna().iloc[0]) if known["threshold"].notna().any() else 0.5
    report = Report([ClassificationPreset(probas_threshold=threshold)])
    return report.run(current_data=Dataset.from_pandas(frame, data_definition=definition))


def _banner(summary: dict[str, Any], source: str) -> str:
    rows = []
    for w in summary["windows"]:
        ci = w["auc_ci95"]
        auc = f"{w['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if w["auc"] is not None else "-"
        flag = "DEGRADED" if w["test"]["degraded"] else ("ok" if w["test"]["tested"] else "too few labels")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    w["window_start"],
                    w["model_version"],
                    w["decisions"],
                    f"{w['label_coverage']:.0%}",
                    auc,
                    f"{w['cost_per_applicant']:.3f}",
                    f"{w['refusal_rate']:.1%}" if w["refusal_rate"] is not None else "-",
                    f"{w['default_rate']:.1%}" if w["default_rate"] is not None else "-",
                    f"{w['brier']:.4f}" if w["brier"] is not None else "-",
                    flag,
                )
            )
            + "</tr>"
        )
    ref = summary["reference"]
    head = (
        "<tr><th>window</th><th>model</th><th>decisions</th><th>labelled</th><th>AUC [95% CI]</th>"
        "<th>cost/applicant</th><th>refusal</th><th>default</th><th>Brier</th><th>test</th></tr>"
    )
    verdict = "PERFORMANCE DEGRADED" if summary["performance_degraded"] else "no degradation found"
    return (
        '<div style="font-family:sans-serif;margin:8px 16px" id="performance-summary">'
        f"<h2>Realised performance: {verdict}</h2><p>Decisions from {html.escape(source)}; "
        f"reference AUC {ref['auc']:.3f}, cost/applicant {ref['cost_per_applicant']:.3f}.</p>"
        f'<table border="1" cellpadding="4" style="border-collapse:collapse">{head}{"".join(rows)}</table>'
        "<p>Below: Evidently's classification report on every labelled decision of the period.</p></div>"
    )
