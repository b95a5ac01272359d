"""`make help`: real URLs (no `$(HOST)` left), every variable with its value, every target listed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = ROOT / "Makefile"
VARIABLES = ("PORT", "HOST", "PYTHON", "VENV", "N", "DRIFT", "URL", "MODEL_URI", "NOTEBOOK_OUT", "API_KEY", "UPGRADE")


def _help(*overrides: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"API_KEY", "MAKEFLAGS", "MFLAGS"}}
    run = subprocess.run(
        ["make", "--no-print-directory", "help", *overrides], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _defaults() -> dict[str, str]:
    return dict(re.findall(r"^([A-Z_]+) \?= ?(.*)$", MAKEFILE.read_text(), re.MULTILINE))


def test_help_prints_real_urls_and_no_make_syntax() -> None:
    text = _help()
    assert "http://127.0.0.1:8000" in text
    assert "$(" not in text and "$$" not in text
    moved = _help("PORT=9123", "HOST=0.0.0.0")
    assert "make serve         serve the API on the committed model at http://0.0.0.0:9123" in moved


def test_help_names_every_variable_with_its_default() -> None:
    text = _help()
    defaults = _defaults()
    assert set(VARIABLES) - {"API_KEY", "UPGRADE"} <= set(defaults), "each documented variable has a default"
    for name in VARIABLES:
        line = next((line for line in text.splitlines() if line.split()[:1] == [name]), None)
        assert line, f"{name} missing from make help"
        if defaults.get(name):
            assert line.split()[1] == defaults[name], line
    assert re.search(r"^  URL\s+\(unset\)", text, re.MULTILINE)


def test_help_lists_every_target_and_says_monitor_installs_the_dev_environment() -> None:
    text = _help()
    targets = re.findall(r"^([a-z-]+):.*## ", MAKEFILE.read_text(), re.MULTILINE)
    assert {"serve", "test", "monitor", "notebook", "notebook-run", "lock"} <= set(targets)
    for target in targets:
        assert re.search(rf"^  make {re.escape(target)}\s", text, re.MULTILINE), target
    monitor = next(line for line in text.splitlines() if line.startswith("  make monitor "))
    assert "install the dev env" in monitor
