"""Deployment wiring of the decision store: Render database, CI's server package, the serving image."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]


def test_render_declares_the_database_and_wires_database_url_from_it() -> None:
    blueprint = yaml.safe_load((REPO / "render.yaml").read_text())
    (database,) = blueprint["databases"]
    (service,) = blueprint["services"]
    env = {e["key"]: e for e in service["envVars"]}
    assert env["DATABASE_URL"] == {
        "key": "DATABASE_URL",
        "fromDatabase": {"name": database["name"], "property": "connectionString"},
    }, "the URL (and its password) comes from Render, never from the file"
    assert database["region"] == service["region"] and database["ipAllowList"] == []
    assert float(env["DECISION_SHUTDOWN_TIMEOUT_S"]["value"]) < service["maxShutdownDelaySeconds"]


def test_ci_installs_the_postgresql_server_the_tests_start() -> None:
    script = (REPO / ".ci" / "run").read_text()
    assert re.search(r"initdb.*\|\| missing\+=\(postgresql\)", script)


def test_the_serving_image_carries_the_driver_and_the_migrations() -> None:
    serve = (REPO / "requirements-serve.txt").read_text()
    assert re.search(r"^psycopg\[binary\]==", serve, re.M)
    migrations = sorted((REPO / "inference" / "decisions" / "migrations").glob("*.sql"))
    assert migrations and "COPY inference/" in (REPO / "Dockerfile").read_text().replace("--chown", "")
    ignored = (REPO / ".dockerignore").read_text()
    assert "!inference/" in ignored and "*.sql" not in ignored
