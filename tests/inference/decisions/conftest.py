"""A real PostgreSQL for the decision-store tests: one throw-away cluster per session, a database per test.

The cluster lives in a fresh folder under /tmp (handed to the `postgres` user when running as
root, since initdb refuses root) and listens on a free port of 127.0.0.1. If it cannot start,
the tests that need it FAIL with the reason: nothing is skipped.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator

import pytest

from scripts.pg_cluster import ClusterError, LocalPostgres

_database_numbers = itertools.count()


def start_cluster() -> LocalPostgres:
    directory = tempfile.mkdtemp(prefix="decisions-pg-", dir="/tmp")
    cluster = LocalPostgres(directory, settings={"fsync": "off", "max_connections": "50"})
    try:
        cluster.start()
    except ClusterError as exc:
        cluster.remove()
        pytest.fail(f"cannot start a PostgreSQL cluster for the tests: {exc}", pytrace=False)
    return cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """The session's cluster (stop it in a test? use `own_postgres`)."""
    cluster = start_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture
def own_postgres() -> Iterator[LocalPostgres]:
    """A cluster of the test's own, for tests that stop and start the server."""
    cluster = start_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture
def database_url(postgres: LocalPostgres) -> str:
    """A new, empty database in the session's cluster."""
    return postgres.create_database(f"test_{next(_database_numbers)}")
