"""Reasons for every refusal, exact attributions on request, and a protected field that changes nothing."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from contract.spec import FeatureSpec
from export.parity import records
from inference.app import create_app
from inference.settings import Settings
from tests.contract import reasons_golden


@pytest.fixture(scope="module")
def held_out(reference_sample_path: Path, spec: FeatureSpec) -> dict[str, list[dict[str, Any]]]:
    """Held-out applicants the exported model accepts and refuses (from the reference sample)."""
    frame = pd.read_parquet(reference_sample_path).head(400)
    applicants = records(frame, spec)
    return {
        "accepted": [a for a, p in zip(applicants, frame["prediction"], strict=True) if p == 0][:20],
        "refused": [a for a, p in zip(applicants, frame["prediction"], strict=True) if p == 1][:20],
    }


def _check_reasons(reasons: list[dict[str, Any]], most: int) -> None:
    assert 1 <= len(reasons) <= most
    contributions = [r["contribution"] for r in reasons]
    assert contributions == sorted(contributions, reverse=True) and contributions[-1] > 0
    for reason in reasons:
        assert reason["text"] and reason["fields"] and reason["feature"]


def test_every_refusal_carries_its_reasons_and_no_acceptance_does(
    client: TestClient, auth: dict[str, str], held_out: dict[str, list[dict[str, Any]]]
) -> None:
    for applicant in held_out["refused"]:
        result = client.post("/predict", json=applicant, headers=auth).json()
        assert result["prediction"] == 1
        _check_reasons(result["reasons"], 4)
    for applicant in held_out["accepted"]:
        result = client.post("/predict", json=applicant, headers=auth).json()
        assert result["prediction"] == 0 and "reasons" not in result and "explanation" not in result


def test_batch_results_carry_reasons_for_the_refused_only(
    client: TestClient, auth: dict[str, str], held_out: dict[str, list[dict[str, Any]]]
) -> None:
    applicants = [held_out["accepted"][0], held_out["refused"][0], held_out["accepted"][1], held_out["refused"][1]]
    results = client.post("/predict/batch", json={"applicants": applicants}, headers=auth).json()["predictions"]
    assert [("reasons" in r) for r in results] == [False, True, False, True]
    single = client.post("/predict", json=applicants[1], headers=auth).json()
    assert results[1]["reasons"] == single["reasons"]  # the same reasons alone or in a batch


@pytest.mark.parametrize("kind", ["accepted", "refused"])
def test_explain_gives_the_exact_attribution_of_any_applicant(
    client: TestClient, auth: dict[str, str], held_out: dict[str, list[dict[str, Any]]], kind: str
) -> None:
    applicant = held_out[kind][0]
    result = client.post("/predict?explain=true", json=applicant, headers=auth).json()
    explanation = result["explanation"]
    logit = math.log(result["probability"] / (1 - result["probability"]))
    total = explanation["base_value"] + math.fsum(explanation["contributions"].values())
    assert abs(total - logit) <= 1e-5  # float32 probability: the log-odds it rounds from
    assert len(explanation["contributions"]) == 125  # 119 inputs, the pensioner flag, 5 ratios
    _check_reasons(result["reasons"], 4)  # asked: reasons even for an accepted applicant
    plain = client.post("/predict", json=applicant, headers=auth).json()
    assert plain["probability"] == result["probability"]


def test_the_number_of_reasons_is_configurable(
    make_settings: Callable[..., Settings], auth: dict[str, str], held_out: dict[str, list[dict[str, Any]]]
) -> None:
    with TestClient(create_app(make_settings(reasons_per_refusal=2))) as client:
        for applicant in held_out["refused"][:5]:
            _check_reasons(client.post("/predict", json=applicant, headers=auth).json()["reasons"], 2)


def test_the_record_keeps_what_the_applicant_was_told(
    app: Any,
    auth: dict[str, str],
    held_out: dict[str, list[dict[str, Any]]],
    log_dir: Path,
    read_records: Callable[[Path], list[dict[str, Any]]],
) -> None:
    with TestClient(app) as client:
        refused = client.post("/predict", json=held_out["refused"][0], headers=auth).json()
        accepted = client.post("/predict", json=held_out["accepted"][0], headers=auth).json()
    by_id = {r["request_id"]: r for r in read_records(log_dir)}
    assert by_id[refused["request_id"]]["reasons"] == refused["reasons"]
    assert "reasons" not in by_id[accepted["request_id"]]


def test_a_protected_field_changes_nothing_in_the_answer(
    client: TestClient, auth: dict[str, str], held_out: dict[str, list[dict[str, Any]]], spec: FeatureSpec
) -> None:
    assert spec.protected_names == ["CODE_GENDER"]
    for applicant in held_out["refused"][:5] + held_out["accepted"][:5]:
        answers = [
            client.post("/predict", json={**applicant, "CODE_GENDER": gender}, headers=auth).json()
            for gender in spec["CODE_GENDER"].levels
        ]
        assert len({a["probability"] for a in answers}) == 1  # bit-identical
        assert len({str(a.get("reasons")) for a in answers}) == 1
        assert all(r["feature"] != "CODE_GENDER" for a in answers for r in a.get("reasons", []))


def test_answers_carry_the_golden_reasons_byte_for_byte(client: TestClient, auth: dict[str, str]) -> None:
    """What the service sends is what `tests/contract/reasons_golden.json` recorded for the same
    applicants: in a batch (reasons for the refused only) and one by one with `explain=true`."""
    golden = reasons_golden.load()
    applicants, expected = golden["applicants"], golden["expected"]
    results = client.post("/predict/batch", json={"applicants": applicants}, headers=auth).json()["predictions"]
    assert [r["prediction"] for r in results] == expected["predictions"]
    for result, reasons in zip(results, expected["explain_reasons_k4"], strict=True):
        assert orjson.dumps(result.get("reasons")) == orjson.dumps(reasons if result["prediction"] else None)
    for applicant, reasons, attribution in list(
        zip(applicants, expected["reasons_k4"], expected["attributions"], strict=True)
    )[::6]:
        result = client.post("/predict?explain=true", json=applicant, headers=auth).json()
        assert orjson.dumps(result["reasons"]) == orjson.dumps(reasons)
        assert orjson.dumps(result["explanation"]) == orjson.dumps(attribution)
