"""The dependency audit's wrapper: allowlist entries need a reason and expire; findings fail."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import audit  # noqa: E402

TODAY = dt.date(2026, 12, 1)


def _allowlist(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "allow.toml"
    path.write_text(body)
    return path


def test_the_committed_allowlist_is_valid() -> None:
    assert audit.read_allowlist(audit.ALLOWLIST, dt.date.today()) == []


def test_an_entry_is_ignored_until_it_expires(tmp_path: Path) -> None:
    path = _allowlist(
        tmp_path,
        '[[ignore]]\nid = "GHSA-1"\npackage = "p"\nreason = "unreachable code path"\nexpires = 2026-12-31\n',
    )
    (entry,) = audit.read_allowlist(path, TODAY)
    command = audit.audit_command(Path("requirements-serve.lock"), [entry], "pip-audit")
    assert command[command.index("--ignore-vuln") + 1] == "GHSA-1"
    assert "--strict" in command and "--require-hashes" in command
    with pytest.raises(audit.AllowlistError, match="expired on 2026-12-31"):
        audit.read_allowlist(path, dt.date(2027, 1, 1))


def test_an_entry_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = _allowlist(tmp_path, '[[ignore]]\nid = "GHSA-1"\npackage = "p"\nexpires = 2026-12-31\n')
    with pytest.raises(audit.AllowlistError, match="missing reason"):
        audit.read_allowlist(path, TODAY)


@pytest.mark.parametrize(("exit_code", "expected"), [(0, 0), (1, 1)])
def test_a_finding_fails_the_audit(tmp_path: Path, exit_code: int, expected: int) -> None:
    """pip-audit's own exit code (1: a vulnerability, or an unauditable pin under --strict) decides."""
    fake = tmp_path / "pip-audit"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nexit {exit_code}\n')
    fake.chmod(0o755)
    lock = tmp_path / "requirements-x.lock"
    lock.write_text("")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit.py"), str(lock), "--pip-audit", str(fake)],
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == expected, result.stderr
    assert "--strict" in (tmp_path / "args").read_text()


def test_the_workflow_runs_the_audit() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "cicd.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert any("make audit" in run for run in runs)
