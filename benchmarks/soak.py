"""A long run at steady load: does the service hold its memory, answer everything and record it?

    python -m benchmarks.soak                          # 10 minutes at 16 connections, JSONL records
    python -m benchmarks.soak --store postgres         # records shipped to a throw-away PostgreSQL
    python -m benchmarks.soak --minutes 1 --sample-s 10

Starts `python -m inference` as `benchmarks.http_load` does (same bodies, same wrk script), then
runs wrk in back-to-back windows of `--sample-s` seconds for `--minutes`, reading the server's RSS
after each window. At the end it reads the server's own count of answered scoring requests
(`http_requests_total` for POST /predict, status 200, from /metrics), stops it gracefully and counts
the decision records: in the JSONL files, or in the `decisions` table once the shutdown has
shipped the local buffer. The issue's bar (RSS within +-10% of its value after the first minute,
no errors, answered == records) is printed as PASS/FAIL lines; the exit code is 1 if one fails.

Answered is the server's count, not wrk's: wrk stops mid-request at the end of each window, so a
request can be answered and recorded without wrk having read its answer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.http_load import count_records, http_call, run_wrk, server_kinds, snapshot, start, stop, write_inputs
from benchmarks.machine import machine_info, memory_mb
from benchmarks.models import PROJECT_ARTIFACT, RESULTS_DIR, BenchModel

logger = logging.getLogger("benchmarks.soak")

RSS_TOLERANCE = 0.10


def answered_by_server(port: int) -> int:
    """POST /predict answers with status 200, as the server counted them (label order does not matter)."""
    status, body = http_call(port, "GET", "/metrics")
    if status != 200:
        raise RuntimeError(f"/metrics answered {status}")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("http_requests_total{") and 'endpoint="/predict"' in line and 'method="POST"' in line:
            if 'status="200"' in line:
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def database_rows(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*), count(DISTINCT request_id) FROM decisions").fetchone()
    assert row is not None
    count, distinct = row
    if count != distinct:
        raise RuntimeError(f"{count - distinct} duplicate records in the decisions table")
    return int(count)


def soak(
    minutes: float, connections: int, sample_s: int, store: str, model_path: Path, out: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp, contextlib.ExitStack() as cleanup:
        work = Path(tmp)
        model = snapshot(BenchModel("artifact", "", "", model_path, "", ""), work / "model")
        log_dir = work / "records"
        database_url = None
        if store == "postgres":
            from scripts.pg_cluster import LocalPostgres

            cluster = LocalPostgres(tempfile.mkdtemp(prefix="soak-pg-", dir="/tmp"))
            cluster.start()
            cleanup.callback(cluster.remove)
            database_url = cluster.create_database("soak")
        kinds = server_kinds(model, work / "feature_spec.json", log_dir, database_url=database_url)
        kind = kinds["service-postgres" if store == "postgres" else "service"]
        files, _, _ = write_inputs(model, work, [kind])
        bodies_file = files[kind.name][0]
        running = start(kind, work)
        windows: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + minutes * 60
            while time.monotonic() < deadline:
                load = run_wrk(running, bodies_file, connections, sample_s, threads=1)
                elapsed_min = (time.monotonic() - (deadline - minutes * 60)) / 60
                window = {
                    "minute": round(elapsed_min, 2),
                    "requests": load["requests"],
                    "requests_per_s": load["requests_per_s"],
                    "errors": load["errors"],
                    "p50_ms": load["p50_ms"],
                    "p99_ms": load["p99_ms"],
                    "rss_mb": memory_mb(running.process.pid)["rss_mb"],
                }
                windows.append(window)
                logger.info(
                    "minute %.1f: %d requests (%.0f/s), %d errors, p99 %.2f ms, RSS %.1f MB",
                    window["minute"],
                    window["requests"],
                    window["requests_per_s"],
                    window["errors"],
                    window["p99_ms"],
                    window["rss_mb"],
                )
            answered = answered_by_server(running.port)
        finally:
            stop(running)
        records = database_rows(database_url) if database_url else count_records(log_dir)
    after_first_minute = next((w["rss_mb"] for w in windows if w["minute"] >= 1.0), windows[-1]["rss_mb"])
    later = [w["rss_mb"] for w in windows if w["minute"] >= 1.0] or [after_first_minute]
    drift = max(abs(r - after_first_minute) for r in later) / after_first_minute
    result = {
        "command": " ".join(["python -m benchmarks.soak", *sys.argv[1:]]),
        "machine": machine_info(),
        "config": {"minutes": minutes, "connections": connections, "sample_s": sample_s, "store": store},
        "windows": windows,
        "requests_sent": sum(w["requests"] for w in windows),
        "errors": sum(w["errors"] for w in windows),
        "answered_200": answered,
        "records": records,
        "rss_mb_after_first_minute": after_first_minute,
        "rss_mb_min_max_after": [min(later), max(later)],
        "rss_max_drift": round(drift, 4),
        "exit_code": running.process.returncode,
    }
    result["checks"] = {
        f"RSS within +-{RSS_TOLERANCE:.0%} of its value after the first minute": drift <= RSS_TOLERANCE,
        "no errors (wrk: connect, read, write, timeout, non-2xx)": result["errors"] == 0,
        "answered == records": answered == records,
        # uvicorn re-raises SIGTERM once its graceful shutdown is done; -9 would mean it had to be killed
        "graceful exit on SIGTERM (0 or -15)": running.process.returncode in (0, -15),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sample-s", type=int, default=30, help="wrk window between RSS readings (seconds)")
    parser.add_argument("--store", choices=["jsonl", "postgres"], default="jsonl")
    parser.add_argument("--model-path", type=Path, default=PROJECT_ARTIFACT)
    parser.add_argument("--out", type=Path, default=None, help="JSON result (default results/soak-<store>.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = args.out or RESULTS_DIR / f"soak-{args.store}.json"
    result = soak(args.minutes, args.connections, args.sample_s, args.store, args.model_path, out)
    print(
        f"{result['requests_sent']} requests sent, {result['answered_200']} answered 200 (server's count), "
        f"{result['records']} records, {result['errors']} errors; RSS {result['rss_mb_after_first_minute']} MB "
        f"after the first minute, then {result['rss_mb_min_max_after'][0]}-{result['rss_mb_min_max_after'][1]} MB "
        f"(max drift {result['rss_max_drift']:.1%}); written to {out}"
    )
    for check, passed in result["checks"].items():
        print(f"{'PASS' if passed else 'FAIL'}  {check}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
