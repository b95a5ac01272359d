"""The `decisions` schema: numbered SQL files applied once each, recorded in `schema_migrations`.

Why not Alembic: it brings SQLAlchemy into the serving image for one table whose changes are
a few DDL statements. Plain files `migrations/NNNN_name.sql`, applied in order, each in its own
transaction with its version row, are versioned and idempotent with ~40 lines and psycopg alone.
A transaction-level advisory lock serialises workers and replicas that start together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x6465636973696F6E  # "decision": one advisory lock for every process migrating this schema


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files("inference.decisions").joinpath("migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


def migrate(connection: psycopg.Connection) -> list[str]:
    """Apply the migrations the database lacks; returns the ones applied (none when up to date)."""
    applied_now = []
    with connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in connection.execute("SELECT version FROM schema_migrations")}
        for migration in migrations():
            if migration.version in done:
                continue
            with connection.transaction():  # a savepoint: a failing file leaves nothing half-applied
                connection.execute(migration.sql.encode())
                connection.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (migration.version, migration.name)
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
    return applied_now
