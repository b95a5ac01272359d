"""Loan outcomes, stored beside the decisions: one writer for POST /outcomes and the CSV loader.

An outcome says whether the applicant of a decision defaulted, and when it was observed. It
names its decision by the desk's `application_id` or by the service's `request_id` (a
`/predict` call; a batch's request id names several applicants and is refused as ambiguous).

Per item, `add` answers one of:
- `stored`: new, written;
- `duplicate`: the same outcome (same id, same `defaulted`) was already stored: nothing written
  (the first `observed_at` is kept), so a retried upload is harmless;
- `conflict`: a contradicting outcome (other `defaulted`) is stored: nothing written, the caller
  is told which id (an outcome is a fact: correcting one is an operator's deliberate act);
- `unknown`: no scored decision carries that id: nothing written;
- `ambiguous`: the request id is a batch's, it names several applicants: nothing written.

Two backends, as for decisions (`open_outcome_store`):
- embedded default: `outcomes.jsonl` in the decisions' log folder (one JSON object a line);
  writers from several processes serialise on an exclusive `flock`, so the idempotency check
  and the append are one step;
- PostgreSQL: the `outcomes` table (migration 0005), primary key (id_kind, id), checked
  against the `decisions` table.

No pandas here: serving imports this module.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from contract.requests import APPLICATION_ID_FIELD
from contract.store import TABLE as DECISIONS_TABLE
from contract.store import describe_database_url

IdKind = Literal["application_id", "request_id"]
ID_KINDS: tuple[IdKind, ...] = ("application_id", "request_id")
Status = Literal["stored", "duplicate", "conflict", "unknown", "ambiguous"]

OUTCOMES_TABLE = "outcomes"
OUTCOMES_FILE = "outcomes.jsonl"
DECISION_FILES = "predictions-*.jsonl"
MAX_OUTCOMES_PER_CALL = 10_000


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class OutcomeItem(BaseModel):
    """One outcome as a client sends it (POST /outcomes, or a row of a back-office CSV file)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    application_id: APPLICATION_ID_FIELD[0] = APPLICATION_ID_FIELD[1]  # type: ignore[valid-type]
    """The desk's id sent with the decision (or give request_id)."""
    request_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
    )
    """The service's request id of a /predict call (when the decision had no application_id)."""
    defaulted: bool
    """Whether the applicant defaulted."""
    observed_at: Annotated[datetime, AfterValidator(_utc)]
    """When the outcome was observed (ISO 8601; UTC when no offset is given)."""

    @model_validator(mode="after")
    def _one_id(self) -> OutcomeItem:
        if (self.application_id is None) == (self.request_id is None):
            raise ValueError("give exactly one of application_id and request_id")
        return self

    def outcome(self) -> Outcome:
        if self.application_id is not None:
            return Outcome("application_id", self.application_id, self.defaulted, self.observed_at)
        return Outcome("request_id", str(self.request_id), self.defaulted, self.observed_at)


class OutcomeBatch(BaseModel):
    """The body of POST /outcomes."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    outcomes: list[OutcomeItem] = Field(min_length=1, max_length=MAX_OUTCOMES_PER_CALL)
    """The outcomes, each naming its decision by application_id or request_id."""


@dataclass(frozen=True, slots=True)
class Outcome:
    id_kind: IdKind
    id: str
    defaulted: bool
    observed_at: datetime

    def as_record(self, received_at: datetime) -> dict[str, Any]:
        return {
            "id_kind": self.id_kind,
            "id": self.id,
            "defaulted": self.defaulted,
            "observed_at": self.observed_at.astimezone(UTC).isoformat(),
            "received_at": received_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ItemResult:
    id_kind: IdKind
    id: str
    status: Status
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {self.id_kind: self.id, "status": self.status}
        if self.message:
            out["message"] = self.message
        return out


class OutcomeStoreError(RuntimeError):
    """The store cannot be read or written (message safe to show: no password)."""


class OutcomeStore(Protocol):
    @property
    def description(self) -> str: ...

    def add(self, outcomes: Sequence[Outcome]) -> list[ItemResult]:
        """Store what is new, in order; one result per outcome."""
        ...

    def read(self) -> list[dict[str, Any]]:
        """Every stored outcome as a record (id_kind, id, defaulted, observed_at, received_at)."""
        ...


def _judge(outcome: Outcome, known: bool | None, decisions: int) -> ItemResult | None:
    """The result when nothing is to be written, None when the outcome is new and stored."""
    if known is not None:
        if known == outcome.defaulted:
            return ItemResult(outcome.id_kind, outcome.id, "duplicate")
        return ItemResult(
            outcome.id_kind,
            outcome.id,
            "conflict",
            f"{outcome.id_kind} {outcome.id} already has the outcome defaulted={str(known).lower()}",
        )
    if decisions == 0:
        return ItemResult(
            outcome.id_kind, outcome.id, "unknown", f"no scored decision has {outcome.id_kind} {outcome.id}"
        )
    if outcome.id_kind == "request_id" and decisions > 1:
        return ItemResult(
            outcome.id_kind,
            outcome.id,
            "ambiguous",
            f"request {outcome.id} scored {decisions} applicants: name each by its application_id",
        )
    return None


class _DecisionIndex:
    """How many scored decisions carry each application id and request id, read incrementally
    from the JSONL segments (only complete lines; a segment's new bytes are read once)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._offsets: dict[Path, int] = {}
        self.counts: dict[tuple[str, str], int] = {}

    def refresh(self) -> None:
        for path in sorted(self.folder.rglob(DECISION_FILES)):
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as handle:
                    handle.seek(offset)
                    data = handle.read()
            except FileNotFoundError:  # purged or rotated away meanwhile
                continue
            end = data.rfind(b"\n") + 1  # a line still being written is read next time
            for line in data[:end].splitlines():
                self._count(line)
            self._offsets[path] = offset + end

    def _count(self, line: bytes) -> None:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        if not isinstance(record, dict) or record.get("error") is not None or "probability" not in record:
            return
        for kind in ID_KINDS:
            value = record.get(kind)
            if value:
                self.counts[(kind, str(value))] = self.counts.get((kind, str(value)), 0) + 1


class JsonlOutcomeStore:
    """`outcomes.jsonl` beside the decision segments (the embedded default)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / OUTCOMES_FILE
        self._decisions = _DecisionIndex(self.folder)
        self._known: dict[tuple[str, str], bool] = {}
        self._offset = 0
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"JSONL file {self.path}"

    def add(self, outcomes: Sequence[Outcome]) -> list[ItemResult]:
        self.folder.mkdir(parents=True, exist_ok=True)
        received_at = datetime.now(UTC)
        with self._lock, self.path.open("ab+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # other processes: check and append as one step
            try:
                self._read_new(handle)
                self._decisions.refresh()
                results, lines = [], []
                for outcome in outcomes:
                    key = (outcome.id_kind, outcome.id)
                    verdict = _judge(outcome, self._known.get(key), self._decisions.counts.get(key, 0))
                    if verdict is None:
                        self._known[key] = outcome.defaulted
                        lines.append(orjson.dumps(outcome.as_record(received_at)) + b"\n")
                        verdict = ItemResult(outcome.id_kind, outcome.id, "stored")
                    results.append(verdict)
                if lines:
                    data = b"".join(lines)
                    os.write(handle.fileno(), data)
                    os.fsync(handle.fileno())
                    self._offset += len(data)
                return results
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_new(self, handle: Any) -> None:
        handle.seek(self._offset)
        data = handle.read()
        end = data.rfind(b"\n") + 1
        for record in _parse_lines(data[:end]):
            self._known.setdefault((record["id_kind"], record["id"]), bool(record["defaulted"]))
        self._offset += end

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return list(_parse_lines(self.path.read_bytes()))


def _parse_lines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("id_kind") in ID_KINDS and "id" in record:
            yield record


class PostgresOutcomeStore:
    """The `outcomes` table beside `decisions` (migration 0005 creates it)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def description(self) -> str:
        return f"PostgreSQL {describe_database_url(self.url)} table {OUTCOMES_TABLE}"

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.OperationalError:
            raise OutcomeStoreError(f"cannot connect to {describe_database_url(self.url)}") from None

    def add(self, outcomes: Sequence[Outcome]) -> list[ItemResult]:
        import psycopg

        received_at = datetime.now(UTC)
        results = []
        try:
            with self._connect() as connection, connection.transaction():
                for outcome in outcomes:
                    inserted = None
                    row = connection.execute(
                        f"SELECT defaulted FROM {OUTCOMES_TABLE} WHERE id_kind = %s AND id = %s",
                        (outcome.id_kind, outcome.id),
                    ).fetchone()
                    decisions = 0
                    if row is None:
                        decisions = connection.execute(
                            f"SELECT count(*) FROM {DECISIONS_TABLE} WHERE {outcome.id_kind} = %s AND error IS NULL"
                            " AND probability IS NOT NULL",
                            (outcome.id,),
                        ).fetchone()[0]
                    verdict = _judge(outcome, None if row is None else bool(row[0]), decisions)
                    if verdict is None:
                        inserted = connection.execute(
                            f"INSERT INTO {OUTCOMES_TABLE} (id_kind, id, defaulted, observed_at, received_at)"
                            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id_kind, id) DO NOTHING RETURNING id",
                            (outcome.id_kind, outcome.id, outcome.defaulted, outcome.observed_at, received_at),
                        ).fetchone()
                        if inserted is None:  # another writer stored it since the SELECT: judge again
                            known = connection.execute(
                                f"SELECT defaulted FROM {OUTCOMES_TABLE} WHERE id_kind = %s AND id = %s",
                                (outcome.id_kind, outcome.id),
                            ).fetchone()[0]
                            verdict = _judge(outcome, bool(known), decisions)
                    results.append(verdict or ItemResult(outcome.id_kind, outcome.id, "stored"))
        except psycopg.errors.UndefinedTable:
            raise OutcomeStoreError(
                f"no {OUTCOMES_TABLE} table in {describe_database_url(self.url)}: "
                "run `python -m inference.decisions migrate` (the service does it at start)"
            ) from None
        except psycopg.Error as exc:
            raise OutcomeStoreError(
                f"{describe_database_url(self.url)} refused the outcomes: {type(exc).__name__}"
            ) from None
        return results

    def read(self) -> list[dict[str, Any]]:
        import psycopg

        try:
            with self._connect() as connection:
                rows = connection.execute(
                    "SELECT id_kind, id, defaulted, observed_at, received_at"
                    f" FROM {OUTCOMES_TABLE} ORDER BY received_at"
                ).fetchall()
        except psycopg.errors.UndefinedTable:
            return []
        names = ("id_kind", "id", "defaulted", "observed_at", "received_at")
        return [
            {**dict(zip(names, row, strict=True)), "observed_at": row[3].isoformat(), "received_at": row[4].isoformat()}
            for row in rows
        ]


def open_outcome_store(*, logs: Path | str | None = None, db: str | None = None) -> OutcomeStore:
    """PostgreSQL when `db` is given, else the JSONL file in the folder `logs`."""
    if db:
        return PostgresOutcomeStore(db)
    if logs is None:
        raise OutcomeStoreError("no outcome store: give a log folder or a database URL")
    return JsonlOutcomeStore(Path(logs))
