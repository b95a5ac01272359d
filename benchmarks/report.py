"""Ratios and targets from the saved results -> results/summary.json (committed) and a Markdown digest.

    python -m benchmarks.report

Reads results/pytest-benchmark.json (model-only and request-path medians) and results/http.json
(the HTTP run), each if present, and checks the issue's targets, all as ratios from one run:
- model-only: the served path's single-row median at most 0.4x the LightGBM Booster's;
- HTTP p50 at 1 connection, logging on, at most 1.3x the no-op floor;
- `mlflow models serve` p50 at least 80x ours;
- requests/s at 16 connections at least 0.8x the floor;
- RSS after load at most 120 MB; healthy within 1.5 s of start.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.models import RESULTS_DIR

TARGETS = {
    "model_single_served_over_booster": ("<=", 0.4),
    "http_c1_p50_service_over_noop": ("<=", 1.3),
    "http_c1_p50_mlflow_over_service": (">=", 80.0),
    "http_c16_rps_service_over_noop": (">=", 0.8),
    "service_rss_mb_after_load": ("<=", 120.0),
    "service_time_to_healthy_s": ("<=", 1.5),
}


def medians(bench: dict[str, Any]) -> dict[str, dict[str, float]]:
    """group -> parameter -> median seconds."""
    found: dict[str, dict[str, float]] = {}
    for b in bench.get("benchmarks", []):
        param = b["name"].split("[", 1)[1].rstrip("]") if "[" in b["name"] else b["name"]
        found.setdefault(b["group"] or "", {})[param] = b["stats"]["median"]
    return found


def model_ratios(groups: dict[str, dict[str, float]]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    for group in ("single", "batch1000"):
        m = groups.get(group, {})
        if {"served", "booster"} <= m.keys():
            ratios[f"model_{group}_served_over_booster"] = m["served"] / m["booster"]
        if {"ort-only", "booster"} <= m.keys():
            ratios[f"model_{group}_ort_only_over_booster"] = m["ort-only"] / m["booster"]
        for slow in ("pipeline", "pyfunc"):
            if {slow, "served"} <= m.keys():
                ratios[f"model_{group}_{slow}_over_served"] = m[slow] / m["served"]
    for group in ("explain-single", "explain-batch1000"):  # what reasons add to the model call
        m = groups.get(group, {})
        name = group.replace("-", "_")
        if {"model+reasons", "model"} <= m.keys():
            ratios[f"{name}_model_reasons_over_model"] = m["model+reasons"] / m["model"]
        if {"explain", "model"} <= m.keys():
            ratios[f"{name}_explain_over_model"] = m["explain"] / m["model"]
    return {k: round(v, 3) for k, v in ratios.items()}


def http_figures(http: dict[str, Any]) -> dict[str, float]:
    servers = {name: s["summary"] for name, s in http.get("servers", {}).items()}
    figures: dict[str, float] = {}
    ours, floor, mlflow = servers.get("service"), servers.get("noop"), servers.get("mlflow")
    if ours:
        figures["service_rss_mb_after_load"] = ours["rss_mb_after_load"]
        figures["service_time_to_healthy_s"] = ours["time_to_healthy_s"]
        figures["service_time_to_healthy_s_max"] = ours["time_to_healthy_s_max"]
        figures["service_errors"] = ours["errors"]
    if ours and floor and "c1_p50_ms" in ours and "c16_requests_per_s" in ours:
        figures["http_c1_p50_service_over_noop"] = round(ours["c1_p50_ms"] / floor["c1_p50_ms"], 3)
        figures["http_c16_rps_service_over_noop"] = round(ours["c16_requests_per_s"] / floor["c16_requests_per_s"], 3)
    if ours and mlflow and "c1_p50_ms" in ours:
        figures["http_c1_p50_mlflow_over_service"] = round(mlflow["c1_p50_ms"] / ours["c1_p50_ms"], 1)
    return figures


def floor_ratios(servers: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Every server of a run against that run's no-op floor (and mlflow serve, when it ran)."""
    floor, mlflow = servers.get("noop"), servers.get("mlflow")
    found: dict[str, dict[str, float]] = {}
    for name, s in servers.items():
        if name in ("noop", "mlflow") or floor is None:
            continue
        found[name] = {
            "c1_p50_over_noop": round(s["c1_p50_ms"] / floor["c1_p50_ms"], 3),
            "c16_rps_over_noop": round(s["c16_requests_per_s"] / floor["c16_requests_per_s"], 3),
        }
        if mlflow is not None:
            found[name]["mlflow_c1_p50_over_this"] = round(mlflow["c1_p50_ms"] / s["c1_p50_ms"], 1)
    return found


def check(figures: dict[str, float]) -> dict[str, dict[str, Any]]:
    verdicts = {}
    for key, (op, limit) in TARGETS.items():
        if key not in figures:
            verdicts[key] = {"target": f"{op} {limit}", "value": None, "met": None}
            continue
        value = figures[key]
        verdicts[key] = {
            "target": f"{op} {limit}",
            "value": value,
            "met": value <= limit if op == "<=" else value >= limit,
        }
    return verdicts


def summarise(results_dir: Path = RESULTS_DIR) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    bench_path, http_path = results_dir / "pytest-benchmark.json", results_dir / "http.json"
    figures: dict[str, float] = {}
    if bench_path.is_file():
        bench = json.loads(bench_path.read_text())
        groups = medians(bench)
        summary["model"] = {
            "source": bench_path.name,
            "datetime": bench.get("datetime"),
            "bench_model": bench.get("bench_model"),
            "medians_us": {g: {k: round(v * 1e6, 2) for k, v in m.items()} for g, m in groups.items()},
        }
        figures.update(model_ratios(groups))
    if http_path.is_file():
        http = json.loads(http_path.read_text())
        summary["http"] = {
            "source": http_path.name,
            "command": http.get("command"),
            "config": http.get("config"),
            "machine": http.get("machine"),
            "model": http.get("model"),
            "servers": {name: s["summary"] for name, s in http.get("servers", {}).items()},
        }
        figures.update(http_figures(http))
    summary["figures"] = figures
    summary["targets"] = check(figures)
    others = {}
    for path in sorted(results_dir.glob("http-*.json")):  # variant runs: each with its own floor
        run = json.loads(path.read_text())
        servers = {name: s["summary"] for name, s in run.get("servers", {}).items()}
        others[path.name] = {
            "command": run.get("command"),
            "servers": servers,
            "ratios_to_floor": floor_ratios(servers),
        }
    if others:
        summary["other_http_runs"] = others
    return summary


def markdown(summary: dict[str, Any]) -> str:
    lines = ["| target | value | limit | met |", "|---|---|---|---|"]
    for key, v in summary["targets"].items():
        met = "n/a" if v["met"] is None else ("yes" if v["met"] else "**no**")
        lines.append(f"| {key} | {v['value']} | {v['target']} | {met} |")
    model = summary.get("model", {}).get("medians_us", {})
    for group, values in model.items():
        lines += ["", f"{group} (median µs): " + ", ".join(f"{k} {v:,.1f}" for k, v in values.items())]
    lines += ["", "ratios: " + ", ".join(f"{k} {v}" for k, v in summary["figures"].items())]
    for name, run in summary.get("other_http_runs", {}).items():
        pairs = run["ratios_to_floor"].items()
        lines += ["", f"{name}: " + "; ".join(f"{server} {ratios}" for server, ratios in pairs)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    results_dir = Path(argv[0]) if argv else RESULTS_DIR
    summary = summarise(results_dir)
    (results_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(markdown(summary))
    print(f"\nwrote {results_dir / 'summary.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
