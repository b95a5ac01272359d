"""The whole loop in one command (`make monitor`): serve, send traffic, stop, report.

Starts the real API (uvicorn, loopback, a throw-away key, a fresh log folder) unless a
running one is given, sends unshifted traffic then shifted traffic, stops the API with SIGTERM
(the service flushes its log on shutdown) and builds the drift report on what it wrote.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitoring.simulate import wait_ready

ROOT = Path(__file__).resolve().parents[1]
DEMO_LOGS = "demo-%Y%m%d-%H%M%S"
"""Log folder of each `make monitor` run, under logs/: one window per run, never mixed with others."""


def new_demo_logs(root: Path = ROOT) -> Path:
    return root / "logs" / time.strftime(DEMO_LOGS)


def latest_demo_logs(root: Path = ROOT) -> Path | None:
    """The log folder of the last `make monitor` run (names sort by time), None before the first."""
    runs = sorted(p for p in (root / "logs").glob("demo-*") if p.is_dir())
    return runs[-1] if runs else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_api(
    model: Path,
    log_dir: Path,
    api_key: str,
    port: int | None = None,
    ready_timeout_s: float = 60.0,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Serve `inference.app:app` on a free loopback port; yields its URL, stops it gracefully on exit.
    `extra_env`: more settings (OUTCOME_API_KEY, CHALLENGER_MODEL_PATH, ...)."""
    port = port or free_port()
    env = {**os.environ, "API_KEY": api_key, "PREDICTION_LOG_DIR": str(log_dir), "MODEL_PATH": str(model)}
    env.update(extra_env or {})
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "inference.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_ready(url, ready_timeout_s)
        except TimeoutError:
            if server.poll() is not None:
                raise RuntimeError(f"the API exited with code {server.returncode} at start-up") from None
            raise
        yield url
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: the prediction log drains its queue
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def new_api_key() -> str:
    return secrets.token_urlsafe(24)
