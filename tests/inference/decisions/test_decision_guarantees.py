"""The decision store's guarantees end to end: the real server (`python -m inference`), real load
(8 client threads on loopback), a real SIGKILL, a real PostgreSQL stopped and started.

The scenarios live in benchmarks/decision_store.py (which also produces the numbers of
benchmarks/RESULTS.md); here they run shorter and their outcome is asserted.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.decision_store import Outcome, outage, sigkill_jsonl, sigkill_postgres, workers
from scripts.pg_cluster import LocalPostgres

THREADS = 8
LOAD_S = 2.0


def _no_answer_without_its_record(outcome: Outcome) -> None:
    assert len(outcome.answers.ok_ids) > 100, outcome.row()  # the load really ran
    assert outcome.missing == 0, outcome.row()
    assert outcome.recorded_ok == len(outcome.answers.ok_ids), outcome.row()
    assert outcome.duplicates == 0, outcome.row()
    assert not [status for status in outcome.answers.statuses if status >= 500], outcome.row()


def test_sigkill_under_load_jsonl(tmp_path: Path) -> None:
    _no_answer_without_its_record(sigkill_jsonl(tmp_path, THREADS, LOAD_S))


def test_sigkill_under_load_postgres_after_restart(tmp_path: Path, postgres: LocalPostgres) -> None:
    _no_answer_without_its_record(sigkill_postgres(tmp_path, postgres.create_database("e2e_kill"), THREADS, LOAD_S))


def test_postgres_stopped_10_s_mid_load(tmp_path: Path, own_postgres: LocalPostgres) -> None:
    url = own_postgres.create_database("e2e_outage")
    outcome = outage(tmp_path, own_postgres, url, THREADS, load_s=12.0, outage_s=10.0)
    _no_answer_without_its_record(outcome)
    assert outcome.rows == outcome.answered, outcome.row()  # every answer (200 or 422) stored, once


def test_two_workers_one_database_every_record_once(tmp_path: Path, postgres: LocalPostgres) -> None:
    outcome = workers(tmp_path, postgres.create_database("e2e_workers"), THREADS, LOAD_S)
    _no_answer_without_its_record(outcome)
    assert outcome.rows == outcome.answered, outcome.row()
    assert len(outcome.rows_by_worker) == 2 and min(outcome.rows_by_worker) > 0, outcome.row()  # both shipped
