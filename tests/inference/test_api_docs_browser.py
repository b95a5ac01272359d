"""/docs and /redoc render in a real browser with every outside host unreachable.

Headless Debian chromium (`.ci/run` installs it; without it these tests fail, saying so). The DOM after the
page's scripts ran proves the UI rendered the API, not just that an HTML shell was served; the
screenshots (in tmp_path) prove a page was painted. `make screenshots` makes the docs' own.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chromium(url: str, *action: str) -> str:
    if CHROMIUM is None:
        pytest.fail("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                # Offline for real: every host but the local server fails to resolve.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--virtual-time-budget=20000", "--window-size=1280,1800", *action, url,
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def base_url(serve: Callable) -> str:
    return str(serve().base_url)


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000  # a rendered page, not a blank one


def test_swagger_ui_renders_offline(base_url: str, tmp_path: Path) -> None:
    page = f"{base_url}/docs#/scoring/predict_predict_post"  # deep link: the /predict operation open
    dom = _chromium(page, "--dump-dom")
    assert 'data-path="/predict"' in dom and 'data-path="/predict/batch"' in dom
    assert "btn authorize" in dom  # the API-key scheme gives Swagger its Authorize button
    assert "AMT_INCOME_TOTAL" in dom  # the example body, shown in the opened operation
    shot = tmp_path / "docs-swagger.png"
    _chromium(page, f"--screenshot={shot}")
    _assert_png(shot)


def test_redoc_renders_offline(base_url: str, tmp_path: Path) -> None:
    dom = _chromium(f"{base_url}/redoc", "--dump-dom")
    assert "Score one applicant" in dom and "Score several applicants in one model call" in dom
    assert "AMT_INCOME_TOTAL" in dom
    shot = tmp_path / "docs-redoc.png"
    _chromium(f"{base_url}/redoc", f"--screenshot={shot}")
    _assert_png(shot)
