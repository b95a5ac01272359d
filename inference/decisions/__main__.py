"""``python -m inference.decisions {migrate,purge}``: the decision store's operator commands.

Both read DATABASE_URL, PREDICTION_LOG_DIR and DECISION_RETENTION_DAYS like the service (no
API_KEY needed). Exit codes: 0 done, 1 the database refused or could not be reached, 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from contract.store import describe_database_url, scrub
from inference.settings import DecisionStoreSettings


def parser(settings: DecisionStoreSettings) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m inference.decisions", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)
    migrate = sub.add_parser("migrate", help="create or upgrade the decisions table (the service does it at start)")
    migrate.add_argument("--db", default=None, help="PostgreSQL URL (default: $DATABASE_URL)")
    purge = sub.add_parser("purge", help="delete decision records older than the retention period")
    purge.add_argument(
        "--older-than-days",
        type=int,
        default=settings.decision_retention_days,
        help=f"retention in days (default: $DECISION_RETENTION_DAYS = {settings.decision_retention_days})",
    )
    purge.add_argument("--db", default=None, help="PostgreSQL URL (default: $DATABASE_URL)")
    purge.add_argument(
        "--logs",
        type=Path,
        default=None,
        help=f"JSONL folder to purge (default: $PREDICTION_LOG_DIR = {settings.prediction_log_dir}, "
        "when no database is configured)",
    )
    return root


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = DecisionStoreSettings()
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        print("error: " + "; ".join(f"{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in problems))
        return 2
    args = parser(settings).parse_args(argv)
    url = args.db or (settings.database_url.get_secret_value() if settings.database_url else None)
    try:
        if args.command == "migrate":
            return _migrate(url)
        return _purge(url, args.logs, args.older_than_days, settings)
    except Exception as exc:  # psycopg errors: one line, password masked
        print(f"error: {scrub(f'{type(exc).__name__}: {exc}'.strip(), url)}", file=sys.stderr)
        return 1


def _migrate(url: str | None) -> int:
    import psycopg

    from inference.decisions.schema import migrate

    if not url:
        print("error: no database: pass --db or set DATABASE_URL", file=sys.stderr)
        return 2
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        applied = migrate(connection)
    print(f"{describe_database_url(url)}: " + (f"applied {', '.join(applied)}" if applied else "up to date"))
    return 0


def _purge(url: str | None, logs: Path | None, days: int, settings: DecisionStoreSettings) -> int:
    from inference.decisions.retention import cutoff, purge_jsonl, purge_postgres

    if days < 1:
        print("error: --older-than-days must be at least 1", file=sys.stderr)
        return 2
    print(f"deleting decision records older than {cutoff(days):%Y-%m-%d %H:%M} UTC ({days} days)")
    if url:
        print(f"{describe_database_url(url)}: {purge_postgres(url, days)} rows deleted")
    if logs is not None or not url:
        folder = logs or settings.prediction_log_dir
        removed = purge_jsonl(folder, days) if folder.is_dir() else []
        print(f"{folder}: {len(removed)} files deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
