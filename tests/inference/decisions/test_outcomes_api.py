"""POST /outcomes against both stores (JSONL file, real PostgreSQL): ids, idempotency, conflicts,
unknown and ambiguous ids per item, key scopes, validation, no-store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from contract.outcomes import OUTCOMES_FILE, JsonlOutcomeStore, Outcome, PostgresOutcomeStore
from inference.app import create_app
from inference.settings import Settings
from scripts.pg_cluster import LocalPostgres

OUTCOME_KEY = "outcome-key-abcdef"
SCORING_KEY_HEADER = "x-api-key"


@pytest.fixture(params=["jsonl", "postgres"])
def store_settings(request: pytest.FixtureRequest, make_settings: Callable[..., Settings]) -> Settings:
    overrides: dict[str, Any] = {"outcome_api_key": OUTCOME_KEY}
    if request.param == "postgres":
        postgres: LocalPostgres = request.getfixturevalue("postgres")
        overrides["database_url"] = postgres.create_database(f"outcomes_{id(request)}")
    return make_settings(**overrides)


def _score(settings: Settings, example: dict[str, Any], auth: dict[str, str]) -> dict[str, Any]:
    """Score a single and a batch, then stop the app: every decision is in the store."""
    with TestClient(create_app(settings)) as client:
        single = client.post("/predict", json={**example, "application_id": "CE-1"}, headers=auth).json()
        plain = client.post("/predict", json=example, headers=auth).json()
        batch = client.post(
            "/predict/batch",
            json={"applicants": [{**example, "application_id": "CE-2"}, {**example, "application_id": "CE-3"}]},
            headers=auth,
        ).json()
    return {"single": single, "plain": plain, "batch": batch}


@pytest.fixture
def scored(store_settings: Settings, example: dict[str, Any], auth: dict[str, str]) -> dict[str, Any]:
    return _score(store_settings, example, auth)


@pytest.fixture
def client(store_settings: Settings, scored: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(create_app(store_settings)) as running:
        yield running


def _post(client: TestClient, items: list[dict[str, Any]], key: str = OUTCOME_KEY) -> Any:
    return client.post("/outcomes", json={"outcomes": items}, headers={SCORING_KEY_HEADER: key})


def test_outcomes_are_stored_once_and_contradictions_refused(client: TestClient, scored: dict[str, Any]) -> None:
    observed = "2026-06-01T00:00:00Z"
    plain_id = scored["plain"]["request_id"]
    first = _post(
        client,
        [
            {"application_id": "CE-1", "defaulted": True, "observed_at": observed},
            {"request_id": plain_id, "defaulted": False, "observed_at": observed},
            {"application_id": "CE-2", "defaulted": False, "observed_at": observed},
            {"application_id": "NOPE-9", "defaulted": True, "observed_at": observed},
            {"request_id": scored["batch"]["request_id"], "defaulted": True, "observed_at": observed},
        ],
    )
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    body = first.json()
    assert [r["status"] for r in body["results"]] == ["stored", "stored", "stored", "unknown", "ambiguous"]
    assert body["results"][3]["application_id"] == "NOPE-9" and "NOPE-9" in body["results"][3]["message"]
    assert body["counts"] == {"stored": 3, "unknown": 1, "ambiguous": 1}

    again = _post(
        client,
        [
            {"application_id": "CE-1", "defaulted": True, "observed_at": "2026-07-01T00:00:00Z"},
            {"application_id": "CE-3", "defaulted": True, "observed_at": observed},
        ],
    )
    assert again.status_code == 200
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "stored"]

    conflict = _post(
        client,
        [
            {"application_id": "CE-2", "defaulted": True, "observed_at": observed},
            {"application_id": "CE-3", "defaulted": True, "observed_at": observed},
        ],
    )
    assert conflict.status_code == 409
    assert conflict.headers["cache-control"] == "no-store"
    error = conflict.json()
    assert error["error"] == "conflict" and "application_id CE-2" in error["message"]
    assert error["details"][0]["field"] == "outcomes.0.defaulted"
    assert [r["status"] for r in error["results"]] == ["conflict", "duplicate"]
    assert error["request_id"] == conflict.headers["x-request-id"]


def test_the_store_holds_one_row_per_outcome(
    client: TestClient, store_settings: Settings, scored: dict[str, Any]
) -> None:
    items = [{"application_id": "CE-1", "defaulted": True, "observed_at": "2026-06-01T12:00:00+02:00"}]
    for _ in range(3):
        assert _post(client, items).status_code == 200
    url = store_settings.database_url
    store = (
        PostgresOutcomeStore(url.get_secret_value()) if url else JsonlOutcomeStore(store_settings.prediction_log_dir)
    )
    rows = store.read()
    assert len(rows) == 1
    assert rows[0]["id"] == "CE-1" and rows[0]["defaulted"] is True
    assert rows[0]["observed_at"].startswith("2026-06-01T10:00:00")  # stored in UTC
    if url is None:
        assert (store_settings.prediction_log_dir / OUTCOMES_FILE).is_file()


def test_key_scopes(client: TestClient, scored: dict[str, Any], api_keys: tuple[str, ...]) -> None:
    items = [{"application_id": "CE-1", "defaulted": True, "observed_at": "2026-06-01"}]
    scoring = _post(client, items, key=api_keys[0])
    assert scoring.status_code == 403 and scoring.json()["error"] == "forbidden"
    unknown = _post(client, items, key="not-a-key-at-all")
    assert unknown.status_code == 401 and unknown.json()["error"] == "unauthorized"
    assert "not-a-key-at-all" not in unknown.text and api_keys[0] not in scoring.text
    missing = client.post("/outcomes", json={"outcomes": items})
    assert missing.status_code == 401 and "x-api-key" in missing.json()["message"]
    assert all(r.headers["cache-control"] == "no-store" for r in (scoring, unknown, missing))


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([{"application_id": "CE-1", "observed_at": "2026-06-01"}], "outcomes.0.defaulted"),
        ([{"application_id": "CE-1", "defaulted": True, "observed_at": "yesterday"}], "outcomes.0.observed_at"),
        ([{"defaulted": True, "observed_at": "2026-06-01"}], "outcomes.0"),
        ([{"application_id": "bad id!", "defaulted": True, "observed_at": "2026-06-01"}], "outcomes.0.application_id"),
        ([], "outcomes"),
    ],
)
def test_invalid_bodies_are_422_naming_the_field(
    make_settings: Callable[..., Settings], items: list[dict[str, Any]], field: str
) -> None:
    with TestClient(create_app(make_settings(outcome_api_key=OUTCOME_KEY))) as client:
        response = _post(client, items)
    assert response.status_code == 422, response.text
    assert response.headers["cache-control"] == "no-store"
    assert field in [d["field"] for d in response.json()["details"]]


def test_not_json_is_422(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(outcome_api_key=OUTCOME_KEY))) as client:
        response = client.post("/outcomes", content=b"{nope", headers={SCORING_KEY_HEADER: OUTCOME_KEY})
    assert response.status_code == 422 and response.json()["error"] == "validation_error"


def test_an_outcome_key_cannot_score(make_settings: Callable[..., Settings], example: dict[str, Any]) -> None:
    with TestClient(create_app(make_settings(outcome_api_key=OUTCOME_KEY))) as client:
        response = client.post("/predict", json=example, headers={SCORING_KEY_HEADER: OUTCOME_KEY})
    assert response.status_code == 403


def test_jsonl_store_sees_decisions_written_after_it_opened(tmp_path: Path) -> None:
    """The decision index is incremental: a decision appended later (or a line half-written) is read when complete."""
    segment = tmp_path / "predictions-2026-06-01-host-1.jsonl"
    segment.write_bytes(b"")
    store = JsonlOutcomeStore(tmp_path)
    outcome = Outcome("application_id", "LATE-1", False, _when())
    assert store.add([outcome])[0].status == "unknown"
    record = orjson.dumps({"request_id": "r1", "application_id": "LATE-1", "probability": 0.2, "prediction": 0})
    with segment.open("ab") as handle:
        handle.write(record[:20])  # a writer mid-line: not yet a decision
    assert store.add([outcome])[0].status == "unknown"
    with segment.open("ab") as handle:
        handle.write(record[20:] + b"\n")
    assert store.add([outcome])[0].status == "stored"
    # a second process's store sees the first one's outcomes (the file is the truth)
    other = JsonlOutcomeStore(tmp_path)
    assert other.add([Outcome("application_id", "LATE-1", True, _when())])[0].status == "conflict"


def _when() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 6, 1, tzinfo=UTC)


def test_csv_load_and_performance_read_the_same_store(
    store_settings: Settings,
    scored: dict[str, Any],
    tmp_path: Path,
    model_path: Path,
    reference_sample_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from monitoring.__main__ import main

    url = store_settings.database_url
    store = ["--db", url.get_secret_value()] if url else ["--logs", str(store_settings.prediction_log_dir)]
    csv = tmp_path / "outcomes.csv"
    plain = scored["plain"]["request_id"]
    csv.write_text(f"application_id,request_id,defaulted,observed_at\nCE-1,,1,2026-09-01\n,{plain},0,2026-09-01\n")
    assert main(["outcomes", "load", str(csv), *store]) == 0
    assert "2 outcomes: stored 2" in capsys.readouterr().out
    assert main(["outcomes", "load", str(csv), *store]) == 0
    assert "duplicate 2" in capsys.readouterr().out

    common = ["--model", str(model_path), "--reference", str(reference_sample_path), "--out", str(tmp_path)]
    assert main(["performance", *store, *common, "--window", "all", "--no-evidently", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["decisions"] == 4 and summary["labelled"] == 2
    (window,) = summary["windows"]
    assert window["defaults"] == 1 and not window["test"]["tested"]  # far too few labels to test
    if url:
        assert url.get_secret_value() not in json.dumps(summary)  # the password never in a report


def test_migration_versions_are_unique() -> None:
    """Two branches each adding migration NNNN would leave one of them never applied."""
    from inference.decisions.schema import migrations

    versions = [m.version for m in migrations()]
    assert len(versions) == len(set(versions)), versions
    assert "outcomes" in [m.name for m in migrations()]
