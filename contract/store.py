"""The decision store's shape, shared by its writer (inference/decisions) and its readers (monitoring).

PostgreSQL holds the records of docs/CONTRACTS.md in one table, `decisions`: the envelope as
typed columns named like the JSON fields (a field a record lacks is null), the validated inputs
as `jsonb`, and `worker` (`<host>-<pid>` of the process that answered). `(request_id, batch_index)` is unique: a
record shipped twice is stored once.
"""

from __future__ import annotations

TABLE = "decisions"

ENVELOPE_COLUMNS = (
    "ts",
    "request_id",
    "batch_index",
    "batch_size",
    "endpoint",
    "status",
    "latency_ms",
    "model_latency_ms",
    "model_version",
    "threshold",
    "probability",
    "prediction",
    "error",
    "error_fields",
    "worker",
    "application_id",
    "challenger_version",
    "challenger_probability",
    "challenger_prediction",
    "reasons",
)
"""Typed columns, in table order (`reasons` is jsonb: what a refused applicant was told); then
`inputs` (jsonb)."""

COLUMNS = (*ENVELOPE_COLUMNS, "inputs")


def describe_database_url(url: str) -> str:
    """`postgresql://user@host:port/dbname`: the URL without its password (for logs and reports).

    Never echoes the input when it does not parse: libpq's own parse errors quote it whole.
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://<unparseable DATABASE_URL>"
    user = f"{parts['user']}@" if parts.get("user") else ""
    host = str(parts.get("host") or "localhost")
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname') or ''}"


def scrub(text: str, url: str | None) -> str:
    """`text` with the URL's password (and the URL itself) masked: for any message that may quote them."""
    if not url:
        return text
    from psycopg.conninfo import conninfo_to_dict

    text = text.replace(url, describe_database_url(url))
    try:
        password = conninfo_to_dict(url).get("password")
    except Exception:
        password = None
    return text.replace(str(password), "***") if password else text
