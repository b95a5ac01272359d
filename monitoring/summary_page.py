"""The drift report people open first: one small self-contained HTML page, verdict at the top.

Evidently's HTML embeds its whole JavaScript bundle (3.7 MB) plus one plotly figure per column
(10.9 MB for 120 columns) and opens on the undrifted columns. This page says the verdict first,
then each drifted column with its test, p-value and reference vs current summary, then every
column sorted by drift (lowest p-value first); numbers are rounded to what a reader needs. The
distributions of the drifted columns are in Evidently's own report beside it (`details`).
"""

from __future__ import annotations

import html
from typing import Any

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin-top:1.6em}
.verdict{padding:.8em 1em;border-radius:6px;font-size:1.15em}
.drift{background:#fde2e1;border:1px solid #e5a1a0}.ok{background:#e3f4e1;border:1px solid #9fcf99}
table{border-collapse:collapse;width:100%;margin:.4em 0}th,td{padding:.3em .6em;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.drifted td{background:#fff3f2;font-weight:600}.muted{color:#777}
"""


def p_value(value: float | None) -> str:
    """2 significant digits: 3.2e-07, 0.041; below double precision, '< 1e-300'."""
    if value is None:
        return "n/a"
    if value < 1e-300:
        return "< 1e-300"
    return f"{value:.2g}"


def number(value: float | None) -> str:
    """3 significant digits, thousands separated: 148,500 / 0.512 / 1.2e+06 stays readable."""
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _side(stats: dict[str, Any] | None) -> str:
    """A column's summary on one side: mean / median / 5-95% range, or its top levels' shares."""
    if not stats:
        return "n/a"
    parts = []
    if "mean" in stats:
        parts.append(
            f"mean {number(stats['mean'])}, median {number(stats['median'])}, "
            f"5-95% {number(stats['p05'])} to {number(stats['p95'])}"
        )
    if "top_levels" in stats:
        parts.append(", ".join(f"{html.escape(str(level))} {share(s)}" for level, s in stats["top_levels"]))
    parts.append(f"missing {share(stats['missing_share'])}")
    return "; ".join(parts)


def _reasons(summary: dict[str, Any]) -> list[str]:
    reasons = []
    drifted = summary["drifted_columns"]
    if summary["dataset_drift"] or drifted:
        names = ", ".join(html.escape(c["column"]) for c in drifted[:5]) + (" ..." if len(drifted) > 5 else "")
        count = f"{summary['drifted_column_count']} of {summary['column_count']}"
        reasons.append(f"{count} input columns drifted ({names})")
    score = summary.get("score_drift")
    if score and score["drifted"]:
        reasons.append(
            f"the model's scores drifted (mean {number(score['reference_mean'])} -> {number(score['current_mean'])})"
        )
    for m in summary["missing_value_drift"]:
        reasons.append(
            f"{html.escape(m['column'])} missing {share(m['reference_share'])} -> {share(m['current_share'])}"
        )
    return reasons


def render(summary: dict[str, Any], details: str | None = None) -> str:
    """The page for one drift summary (`monitoring.drift.summarize` + traffic); `details`: link to Evidently's."""
    detected = bool(summary["drift_detected"])
    config = summary["config"]
    reasons = _reasons(summary)
    verdict = (
        "Drift detected: " + "; ".join(reasons) + "."
        if detected
        else f"No drift detected in {summary['column_count']} input columns, the model's scores or missing values."
    )
    rows = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>Drift report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Drift report</h1>",
        f'<p class="verdict {"drift" if detected else "ok"}"><strong>{verdict}</strong></p>',
        f'<p class="muted">{summary["current_rows"]:,} production applicants vs {summary["reference_rows"]:,} '
        f"reference rows; generated {html.escape(str(summary['generated_at']))}. A column drifts when its p-value "
        f"is below {config['threshold']:g}; the data drifts from {config['min_drifted_columns']} drifted "
        f"column(s); missing shares may move by {config['missing_tolerance']:.0%}."
        + (f' Distributions: <a href="{html.escape(details)}">Evidently report</a>.' if details else "")
        + "</p>",
    ]
    if summary["drifted_columns"]:
        rows += [
            "<h2>Drifted columns</h2>",
            "<table><tr><th>column</th><th>test</th><th>p-value</th><th>reference</th><th>current</th></tr>",
        ]
        for c in summary["drifted_columns"]:
            rows.append(
                f'<tr class="drifted"><td>{html.escape(c["column"])}</td><td>{html.escape(str(c["method"]))}</td>'
                f'<td class="n">{p_value(c["score"])}</td><td>{_side(c.get("reference"))}</td>'
                f"<td>{_side(c.get('current'))}</td></tr>"
            )
        rows.append("</table>")
    score = summary.get("score_drift")
    if score:
        rows += [
            "<h2>Model score</h2>",
            f"<p>{'Drifted' if score['drifted'] else 'No drift'}: {html.escape(str(score['method']))} p-value "
            f"{p_value(score['score'])} (threshold {score['threshold']:g}); mean probability "
            f"{number(score['reference_mean'])} in the reference, {number(score['current_mean'])} now.</p>",
        ]
    if summary["missing_value_drift"]:
        rows += ["<h2>Missing values</h2>", "<table><tr><th>column</th><th>reference</th><th>current</th></tr>"]
        rows += [
            f'<tr class="drifted"><td>{html.escape(m["column"])}</td><td class="n">{share(m["reference_share"])}</td>'
            f'<td class="n">{share(m["current_share"])}</td></tr>'
            for m in summary["missing_value_drift"]
        ]
        rows.append("</table>")
    traffic = summary.get("traffic")
    if traffic:
        latency = traffic["latency_ms"]
        rows += [
            "<h2>Traffic</h2>",
            f"<p>{traffic['requests']:,} requests; latency p50/p95/p99 {latency['p50']}/{latency['p95']}/"
            f"{latency['p99']} ms; error rate {share(traffic['error_rate'])}; refusal rate "
            f"{share(traffic['decision_rate'])}"
            + (
                f" (reference {share(traffic['reference_decision_rate'])})"
                if "reference_decision_rate" in traffic
                else ""
            )
            + ".</p>",
        ]
    columns = summary.get("columns") or []
    if columns:
        rows += [
            "<h2>Every column, most drifted first</h2>",
            "<table><tr><th>column</th><th>kind</th><th>test</th><th>p-value</th><th>drifted</th></tr>",
        ]
        for c in columns:
            rows.append(
                f"<tr{' class=drifted' if c['drifted'] else ''}><td>{html.escape(c['column'])}</td>"
                f"<td>{html.escape(c['kind'])}</td><td>{html.escape(str(c['method']))}</td>"
                f'<td class="n">{p_value(c["score"])}</td><td>{"yes" if c["drifted"] else ""}</td></tr>'
            )
        rows.append("</table>")
    elif not summary["drifted_columns"]:
        rows.append('<p class="muted">Quick report: per-column p-values not computed (run without --quick).</p>')
    if summary.get("skipped_columns"):
        rows.append(
            '<p class="muted">Not tested (no value on one side): '
            + ", ".join(html.escape(c) for c in summary["skipped_columns"])
            + "</p>"
        )
    rows.append("</body></html>")
    return "\n".join(rows) + "\n"
