"""The decision store's guarantees, proven with real processes: `python -m benchmarks.decision_store`.

Each scenario starts the real server (`python -m inference`, loopback), puts it under load from
client threads (keep-alive connections, 1 request in 10 deliberately invalid), does something
bad to it, and compares what the clients were answered with what the store holds:

- `sigkill-jsonl` / `sigkill-postgres`: SIGKILL of the server mid-load. Every 200 a client
  received must have its record: in the JSONL files, or in PostgreSQL once a restarted server
  has shipped the dead one's segments.
- `outage`: PostgreSQL stopped for `--outage-s` seconds mid-load, then started again: no 5xx,
  answered == rows, no duplicate.
- `workers`: WEB_CONCURRENCY=2 workers shipping to one database: every record exactly once.

tests/inference/decisions/test_decision_guarantees.py runs the same scenarios, shorter. The numbers in
benchmarks/RESULTS.md come from this command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from scripts.pg_cluster import LocalPostgres, free_port

REPO = Path(__file__).resolve().parents[1]
KEY = "decision-store-bench-key"


@dataclass
class Answers:
    """What the clients received: (status, request id) per answer, and failed connections."""

    received: list[tuple[int, str]] = field(default_factory=list)
    transport_errors: int = 0

    @property
    def ok_ids(self) -> set[str]:
        return {rid for status, rid in self.received if status == 200}

    @property
    def statuses(self) -> Counter[int]:
        return Counter(status for status, _ in self.received)


class Server:
    """`python -m inference` (the container's command) on a free loopback port."""

    def __init__(self, folder: Path, log_name: str, **env: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"{log_name}.log"
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(REPO),
            "API_KEY": KEY,
            "MODEL_PATH": str(REPO / "models" / "credit_scoring.onnx"),
            "PREDICTION_LOG_DIR": str(folder / "records"),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "LOG_LEVEL": "INFO",
            **env,
        }
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "inference"], cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout_s: float = 60.0, workers: int = 1) -> None:
        """Until /ready answers 200 and every worker process has finished its start-up."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                started = self.output().count("Application startup complete")
                if started >= workers and httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout_s} s:\n{self.output()[-3000:]}")

    def example(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base_url}/example", timeout=5).json())

    def metric(self, name: str) -> float:
        text = httpx.get(f"{self.base_url}/metrics", timeout=5).text
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))

    def terminate(self, timeout_s: float = 40.0) -> int:
        """SIGTERM (a deploy) and wait for the graceful exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


class Load:
    """Client threads posting /predict in a loop until stopped (or the server goes away)."""

    def __init__(self, base_url: str, example: dict[str, Any], threads: int) -> None:
        self.answers = Answers()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._base_url = base_url
        self._bodies = [orjson.dumps({**example, "EXT_SOURCE_3": round(0.01 * (i % 80 + 1), 3)}) for i in range(80)]
        self._invalid = orjson.dumps({**example, "AMT_INCOME_TOTAL": -1.0})
        self._threads = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _loop(self, worker: int) -> None:
        headers = {"x-api-key": KEY, "content-type": "application/json"}
        with httpx.Client(base_url=self._base_url, timeout=30) as client:
            i = worker
            while not self._stop.is_set():
                i += 1
                body = self._invalid if i % 10 == 0 else self._bodies[i % len(self._bodies)]
                try:
                    response = client.post("/predict", content=body, headers=headers)
                except httpx.TransportError:
                    with self._lock:
                        self.answers.transport_errors += 1
                    if self._stop.wait(0.05):
                        return
                    continue
                with self._lock:
                    self.answers.received.append((response.status_code, response.headers.get("x-request-id", "")))

    def count(self) -> int:
        with self._lock:
            return len(self.answers.received)

    def stop(self) -> Answers:
        self._stop.set()
        for thread in self._threads:
            thread.join(40)
        return self.answers


def jsonl_ids(folder: Path) -> Counter[str]:
    """Request ids of the records in a JSONL folder (a count above 1 would be a duplicate)."""
    ids: Counter[str] = Counter()
    for path in folder.glob("predictions-*.jsonl"):
        for line in path.read_bytes().splitlines():
            ids[orjson.loads(line)["request_id"]] += 1
    return ids


def unshipped_bytes(folder: Path) -> int:
    """Bytes of the local segments not yet shipped (their `.shipped` sidecars say how far they are)."""
    from inference.decisions.segments import read_offset

    total = 0
    for path in folder.glob("predictions-*.jsonl"):
        stat = path.stat()
        total += stat.st_size - read_offset(path, stat.st_ino)
    return total


def db_ids(url: str, status: int | None = None) -> Counter[str]:
    query = "SELECT request_id FROM decisions" + (" WHERE status = %s" if status is not None else "")
    with psycopg.connect(url) as connection:
        return Counter(row[0] for row in connection.execute(query, (status,) if status is not None else ()))


def db_workers(url: str) -> Counter[str]:
    with psycopg.connect(url) as connection:
        return Counter(dict(connection.execute("SELECT worker, count(*) FROM decisions GROUP BY worker").fetchall()))


def _until(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@dataclass
class Outcome:
    scenario: str
    answers: Answers
    recorded_ok: int  # 200 records in the store
    missing: int  # answered 200s without a record
    duplicates: int  # records stored more than once
    seconds: float
    notes: str = ""
    rows: int | None = None  # all records stored (200s and rejections)
    rows_by_worker: list[int] = field(default_factory=list)

    @property
    def answered(self) -> int:
        """Distinct requests answered (any status)."""
        return len({rid for _, rid in self.answers.received})

    def row(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.answers.statuses.items()))
        fivexx = sum(v for k, v in self.answers.statuses.items() if k >= 500)
        return (
            f"| {self.scenario} | {self.seconds:.0f} s | {len(self.answers.ok_ids)} | {self.recorded_ok} | "
            f"{self.missing} | {self.duplicates} | {fivexx} | {statuses} | {self.notes} |"
        )


HEADER = (
    "| scenario | load | answered 200 | 200 records stored | answered, not stored | duplicates | 5xx "
    "| answers by status | notes |\n|---|---|---|---|---|---|---|---|---|"
)


def sigkill_jsonl(folder: Path, threads: int, load_s: float) -> Outcome:
    server = Server(folder, "sigkill-jsonl")
    server.wait_ready()
    load = Load(server.base_url, server.example(), threads)
    time.sleep(load_s)
    server.kill()  # mid-load: requests in flight, no shutdown code runs
    answers = load.stop()
    stored = jsonl_ids(folder / "records")
    ok = answers.ok_ids
    return Outcome("SIGKILL, JSONL", answers, len(ok & set(stored)), len(ok - set(stored)),
                   sum(n - 1 for n in stored.values() if n > 1), load_s,
                   f"{sum(stored.values())} records on disk (answered or not)")  # fmt: skip


def sigkill_postgres(folder: Path, url: str, threads: int, load_s: float) -> Outcome:
    server = Server(folder, "sigkill-postgres", DATABASE_URL=url)
    server.wait_ready()
    load = Load(server.base_url, server.example(), threads)
    time.sleep(load_s)
    server.kill()
    answers = load.stop()
    left = unshipped_bytes(folder / "records")
    restarted = Server(folder, "sigkill-postgres-restart", DATABASE_URL=url)  # ships the dead one's segments
    restarted.wait_ready()
    ok = answers.ok_ids
    _until(lambda: ok <= set(db_ids(url, 200)), 30)
    restarted.terminate()
    stored = db_ids(url)
    return Outcome("SIGKILL, PostgreSQL (after restart)", answers, len(ok & set(db_ids(url, 200))),
                   len(ok - set(stored)), sum(n - 1 for n in stored.values() if n > 1), load_s,
                   f"{left / 1e6:.2f} MB unshipped at the kill, shipped by the restarted server")  # fmt: skip


def outage(folder: Path, cluster: LocalPostgres, url: str, threads: int, load_s: float, outage_s: float) -> Outcome:
    server = Server(folder, "outage", DATABASE_URL=url)
    server.wait_ready()
    load = Load(server.base_url, server.example(), threads)
    before = (load_s - outage_s) / 2
    time.sleep(before)
    cluster.stop()
    down_at = load.count()
    time.sleep(outage_s)
    buffered = unshipped_bytes(folder / "records")
    during = load.count() - down_at
    cluster.start()
    time.sleep(before)
    answers = load.stop()
    code = server.terminate()  # graceful: ships the rest within DECISION_SHUTDOWN_TIMEOUT_S
    stored = db_ids(url)
    ok = answers.ok_ids
    all_ids = {rid for _, rid in answers.received}
    return Outcome(f"PostgreSQL stopped {outage_s:.0f} s mid-load", answers, len(ok & set(db_ids(url, 200))),
                   len(ok - set(stored)), sum(n - 1 for n in stored.values() if n > 1), load_s,
                   f"{during} answers while down, {buffered / 1e6:.1f} MB waited on disk; rows == answers: "
                   f"{sum(stored.values()) == len(all_ids)}; exit {code}", rows=sum(stored.values()))  # fmt: skip


def workers(folder: Path, url: str, threads: int, load_s: float) -> Outcome:
    server = Server(folder, "workers", DATABASE_URL=url, WEB_CONCURRENCY="2")
    server.wait_ready(workers=2)  # both listening before the clients connect, so both get some
    load = Load(server.base_url, server.example(), threads)
    time.sleep(load_s)
    answers = load.stop()
    code = server.terminate()
    stored = db_ids(url)
    ok = answers.ok_ids
    by_worker = db_workers(url)
    all_ids = {rid for _, rid in answers.received}
    return Outcome("2 workers, one database", answers, len(ok & set(db_ids(url, 200))), len(ok - set(stored)),
                   sum(n - 1 for n in stored.values() if n > 1), load_s,
                   f"rows by worker {sorted(by_worker.values())}; rows == answers: "
                   f"{sum(stored.values()) == len(all_ids)}; exit {code}", rows=sum(stored.values()),
                   rows_by_worker=sorted(by_worker.values()))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(prog="python -m benchmarks.decision_store", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    cli.add_argument("--threads", type=int, default=8, help="client threads (default 8)")
    cli.add_argument("--load-s", type=float, default=5.0, help="seconds of load per scenario (default 5)")
    cli.add_argument("--outage-s", type=float, default=10.0, help="seconds PostgreSQL is down (default 10)")
    args = cli.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="decision-store-bench-", dir="/tmp"))
    cluster = LocalPostgres(tempfile.mkdtemp(prefix="decision-store-pg-", dir="/tmp"))  # its own: handed to postgres
    cluster.start()
    outcomes = []
    try:
        runs = [
            ("sigkill-jsonl", lambda d: sigkill_jsonl(d, args.threads, args.load_s)),
            (
                "sigkill-pg",
                lambda d: sigkill_postgres(d, cluster.create_database("sigkill"), args.threads, args.load_s),
            ),
            (
                "outage",
                lambda d: outage(
                    d,
                    cluster,
                    cluster.create_database("outage"),
                    args.threads,
                    args.outage_s + 2 * args.load_s,
                    args.outage_s,
                ),
            ),  # fmt: skip
            ("workers", lambda d: workers(d, cluster.create_database("workers"), args.threads, args.load_s)),
        ]
        for name, run in runs:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            folder = work / name
            folder.mkdir()
            outcomes.append(run(folder))
            print(outcomes[-1].row(), file=sys.stderr, flush=True)
    finally:
        cluster.remove()
    print(f"`python -m benchmarks.decision_store --threads {args.threads} --load-s {args.load_s:g} "
          f"--outage-s {args.outage_s:g}`\n")  # fmt: skip
    print(HEADER)
    for outcome in outcomes:
        print(outcome.row())
    return 0 if all(o.missing == 0 and o.duplicates == 0 for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
