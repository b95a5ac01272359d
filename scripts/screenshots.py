"""Screenshots for the docs: Swagger UI, ReDoc, the latest drift report and the latest flamegraph.

    python scripts/screenshots.py [--url http://127.0.0.1:8000] [--out docs/screenshots]
    python scripts/screenshots.py --serve     # start the API on a free local port for the shots

Headless Chromium (Debian: `apt-get install chromium`) renders each page to a PNG. A target whose
source is missing (API not running, no report or flamegraph generated yet) is skipped with a
message, so the script can run at any stage of the project. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Target:
    name: str
    url: str | None  # None: skipped, for `reason`
    reason: str = ""


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (URL given by the user)
            return 200 <= response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _newest(folder: Path, pattern: str) -> Path | None:
    files = [p for p in folder.rglob(pattern) if p.is_file()] if folder.is_dir() else []
    return max(files, key=lambda p: p.stat().st_mtime, default=None)


def targets(api_url: str, reports: Path, benchmarks: Path) -> list[Target]:
    """What to capture, each resolved to a URL or to the reason it is skipped."""
    api_url = api_url.rstrip("/")
    found: list[Target] = []
    for name, path in (("swagger", "/docs"), ("redoc", "/redoc")):
        url = api_url + path
        found.append(Target(name, url) if _reachable(url) else Target(name, None, f"{url} does not answer"))
    for name, folder, pattern in (
        ("drift-report", reports, "drift_report.html"),  # the verdict page, not Evidently's details
        ("flamegraph", benchmarks, "*.svg"),
    ):
        newest = _newest(folder, pattern)
        if newest is None:
            found.append(Target(name, None, f"no {pattern} under {folder}"))
        else:
            found.append(Target(name, newest.resolve().as_uri()))
    return found


def find_browser(explicit: str | None) -> str | None:
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def capture(browser: str, url: str, out: Path, width: int, height: int, budget_ms: int) -> None:
    """One headless Chromium run; raises RuntimeError unless a PNG was written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshots-chromium-") as profile:
        command = [
            browser,
            "--headless",
            # Only our own pages are rendered; without this Chromium refuses to start as root or in
            # containers and CI runners that forbid the user namespaces its sandbox needs.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            # Let Swagger UI / ReDoc / Evidently finish their JavaScript rendering before the shot.
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={out}",
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if not out.is_file() or out.read_bytes()[:8] != PNG_SIGNATURE:
        detail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"no screenshot written (exit {result.returncode}): {' | '.join(detail)}")


@contextlib.contextmanager
def serve_api(timeout: float = 60.0) -> Iterator[str]:
    """Run the API from this checkout on a free loopback port; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # The docs pages need no key; the service only refuses to start without one.
    env = {**os.environ, "API_KEY": os.environ.get("API_KEY") or secrets.token_urlsafe(24)}
    command = [sys.executable, "-m", "uvicorn", "inference.app:app", "--host", "127.0.0.1", "--port", str(port)]
    with tempfile.TemporaryFile(mode="w+") as errors:  # a file, not a pipe: a chatty server never blocks
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
        try:
            deadline = time.monotonic() + timeout
            while not _reachable(url + "/health"):
                if server.poll() is not None:
                    errors.seek(0)
                    raise RuntimeError(f"the API did not start: {errors.read().strip()[-500:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the API did not answer within {timeout:.0f}s")
                time.sleep(0.3)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the running API")
    parser.add_argument("--serve", action="store_true", help="start the API from this checkout instead of --url")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="folder for the PNGs")
    parser.add_argument("--reports", type=Path, default=ROOT / "reports", help="where drift reports (*.html) are")
    parser.add_argument(
        "--benchmarks", type=Path, default=ROOT / "benchmarks" / "results", help="where flamegraphs (*.svg) are"
    )
    parser.add_argument("--browser", help=f"Chromium binary (default: the first of {', '.join(BROWSERS)} on PATH)")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--budget-ms", type=int, default=5000, help="virtual time given to page scripts")
    args = parser.parse_args(argv)

    if not args.serve:
        return shoot(args, args.url)
    try:
        with serve_api() as url:
            return shoot(args, url)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1


def shoot(args: argparse.Namespace, api_url: str) -> int:
    """Capture every target whose source exists; 0 when all of those succeeded."""
    plan = targets(api_url, args.reports, args.benchmarks)
    wanted = [t for t in plan if t.url is not None]
    for target in plan:
        if target.url is None:
            print(f"skip {target.name}: {target.reason}")
    if not wanted:
        print("nothing to capture")
        return 0
    browser = find_browser(args.browser)
    if browser is None:
        print("Chromium not found: apt-get install chromium (or pass --browser)", file=sys.stderr)
        return 2

    failures = 0
    for target in wanted:
        assert target.url is not None
        out = args.out / f"{target.name}.png"
        try:
            capture(browser, target.url, out, args.width, args.height, args.budget_ms)
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            failures += 1
            print(f"FAIL {target.name}: {exc}", file=sys.stderr)
            continue
        print(f"ok   {target.name}: {out} ({out.stat().st_size // 1024} KiB)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
