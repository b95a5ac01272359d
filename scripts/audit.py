"""`make audit`: every locked requirement checked for known vulnerabilities (pip-audit, PyPI's
vulnerability service), failing on any that security/audit-allowlist.toml does not excuse.

An allowlist entry needs an id, a package, a reason and an expiry date; an expired or
incomplete entry fails the audit itself, so an exception cannot outlive its reason unnoticed.
It needs PyPI's JSON API (pypi.org/pypi/NAME/VERSION/json): the CI workflow runs it on GitHub's
runners; where that API is not reachable, every package is unauditable and the audit fails.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWLIST = ROOT / "security" / "audit-allowlist.toml"


class AllowlistError(ValueError):
    """An entry is incomplete or expired."""


@dataclass(frozen=True)
class Allowed:
    id: str
    package: str
    reason: str
    expires: dt.date


def read_allowlist(path: Path, today: dt.date) -> list[Allowed]:
    entries = tomllib.loads(path.read_text()).get("ignore", [])
    found = []
    for number, entry in enumerate(entries, start=1):
        missing = [key for key in ("id", "package", "reason", "expires") if not entry.get(key)]
        if missing:
            raise AllowlistError(f"{path.name} entry {number}: missing {', '.join(missing)}")
        expires = entry["expires"]
        if not isinstance(expires, dt.date):
            raise AllowlistError(f"{path.name} entry {number} ({entry['id']}): expires must be a date (2027-01-31)")
        if expires < today:
            raise AllowlistError(
                f"{path.name}: the exception for {entry['id']} ({entry['package']}) expired on {expires}: "
                "upgrade the package, or renew the entry with a new reason"
            )
        found.append(Allowed(entry["id"], entry["package"], entry["reason"], expires))
    return found


def audit_command(lock: Path, allowed: list[Allowed], pip_audit: str) -> list[str]:
    # --strict: a package the service cannot look up fails the audit; an unaudited pin never passes.
    command = [pip_audit, "--requirement", str(lock), "--require-hashes", "--disable-pip", "--strict"]
    command += ["--progress-spinner", "off"]
    for entry in allowed:
        command += ["--ignore-vuln", entry.id]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("locks", nargs="*", type=Path, help="lock files (default: every requirements-*.lock)")
    parser.add_argument("--pip-audit", default=str(Path(sys.executable).with_name("pip-audit")))
    parser.add_argument("--allowlist", type=Path, default=ALLOWLIST)
    args = parser.parse_args(argv)
    try:
        allowed = read_allowlist(args.allowlist, dt.date.today())
    except AllowlistError as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    locks = args.locks or sorted(ROOT.glob("requirements-*.lock"))
    failed = []
    for lock in locks:
        print(f"audit: {lock.name}", flush=True)
        if subprocess.run(audit_command(lock, allowed, args.pip_audit), check=False).returncode != 0:
            failed.append(lock.name)
    if failed:
        print(f"audit: known vulnerabilities in {', '.join(failed)} (see above)", file=sys.stderr)
        return 1
    print(f"audit: no known vulnerability in {len(locks)} locks ({len(allowed)} allowlisted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
