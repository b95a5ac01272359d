"""The traffic simulator: shifts really shift, bodies pass the API's validation, sending counts right."""

from __future__ import annotations

import json
import threading

import httpx
import numpy as np
import orjson
import pytest

from contract.requests import build_request_models
from monitoring.artifacts import load_feature_spec
from monitoring.simulate import SHIFTS, Shift, apply_shift, combine, draw_applicants, send, to_payloads

SPEC = load_feature_spec(None)


@pytest.fixture(scope="module")
def applicants():  # type: ignore[no-untyped-def]
    return draw_applicants(4000, seed=5, spec=SPEC)


def test_income_shift_multiplies_incomes(applicants) -> None:  # type: ignore[no-untyped-def]
    shifted = apply_shift(applicants, SHIFTS["income"], SPEC)

    ratio = shifted["AMT_INCOME_TOTAL"] / applicants["AMT_INCOME_TOTAL"]
    assert np.allclose(ratio, 1.3)
    assert shifted["AMT_INCOME_TOTAL"].max() <= SPEC["AMT_INCOME_TOTAL"].maximum
    untouched = [c for c in SPEC.names if c != "AMT_INCOME_TOTAL"]
    assert shifted[untouched].equals(applicants[untouched])


def test_category_shift_moves_the_level_share(applicants) -> None:  # type: ignore[no-untyped-def]
    column, level, share = SHIFTS["category"].category  # type: ignore[misc]
    before = (applicants[column] == level).mean()
    after = (apply_shift(applicants, SHIFTS["category"], SPEC)[column] == level).mean()

    assert before == pytest.approx(0.243, abs=0.03)
    assert after == pytest.approx(share, abs=0.03)
    down = apply_shift(applicants, Shift(category=(column, level, 0.1)), SPEC)[column]
    assert (down == level).mean() == pytest.approx(0.1, abs=0.02)
    assert set(down.dropna()) <= set(SPEC[column].levels)


def test_missing_shift_blanks_present_values(applicants) -> None:  # type: ignore[no-untyped-def]
    shifted = apply_shift(applicants, SHIFTS["missing"], SPEC)

    for column in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"):
        present_before = applicants[column].notna().mean()
        present_after = shifted[column].notna().mean()
        assert present_after == pytest.approx(present_before * 0.7, abs=0.03)
        assert shifted[column].isna()[applicants[column].isna()].all()  # missing stays missing


def test_shifts_combine_and_refuse_nonsense() -> None:
    everything = combine(["all"])
    assert everything.income_factor == 1.3
    assert everything.category == SHIFTS["category"].category
    assert everything.missing_columns == SHIFTS["missing"].missing_columns
    assert combine([]).is_identity and combine(["none"]).is_identity
    with pytest.raises(ValueError, match="unknown shift"):
        combine(["weather"])
    with pytest.raises(ValueError, match="required"):
        apply_shift(draw_applicants(10, 1, SPEC), Shift(missing_columns=("AMT_CREDIT",), missing_rate=0.5), SPEC)
    with pytest.raises(ValueError, match="not a level"):
        apply_shift(draw_applicants(10, 1, SPEC), Shift(category=("CODE_GENDER", "Z", 0.5)), SPEC)


def test_payloads_pass_the_apis_own_validation() -> None:
    models = build_request_models(SPEC, max_batch_size=1000)
    frame = apply_shift(draw_applicants(200, seed=6, spec=SPEC), combine(["all"]), SPEC)
    payloads = to_payloads(frame, SPEC)

    for payload in payloads:
        assert all(value is not None for value in payload.values())
        models.parse_applicant(orjson.dumps(payload))  # raises RequestInvalid if the API would say 422
    assert isinstance(payloads[0]["DAYS_BIRTH"], int)
    assert all(
        "EXT_SOURCE_3" not in p for p, missing in zip(payloads, frame["EXT_SOURCE_3"].isna(), strict=True) if missing
    )


def _fake_api(seen: list[tuple[str, dict, str]]) -> httpx.MockTransport:
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with lock:
            seen.append((request.url.path, body, request.headers.get("x-api-key", "")))
        if request.headers.get("x-api-key") != "k":
            return httpx.Response(401, json={"error": "unauthorized"})
        applicants = body["applicants"] if request.url.path == "/predict/batch" else [body]
        if any(a.get("AMT_INCOME_TOTAL", 0) < 0 for a in applicants):
            return httpx.Response(422, json={"error": "validation_error"})
        return httpx.Response(200, json={"prediction": 0, "probability": 0.1})

    return httpx.MockTransport(handler)


def test_send_posts_every_applicant_and_counts_statuses() -> None:
    seen: list[tuple[str, dict, str]] = []
    payloads = to_payloads(draw_applicants(60, seed=7, spec=SPEC), SPEC)
    result = send(
        "http://api", "k", payloads, concurrency=3, invalid_share=0.3, seed=1, progress=False, transport=_fake_api(seen)
    )

    assert result.sent == len(seen) == 60
    assert {path for path, _, _ in seen} == {"/predict"}
    assert sum(result.statuses.values()) == 60
    assert result.statuses["200"] < 60 and result.statuses["401"] + result.statuses["422"] > 0
    summary = result.summary()
    assert summary["requests"] == 60 and summary["client_latency_ms"]["p50"] >= 0


def test_send_in_batches_uses_the_batch_endpoint() -> None:
    seen: list[tuple[str, dict, str]] = []
    payloads = to_payloads(draw_applicants(25, seed=8, spec=SPEC), SPEC)
    result = send("http://api", "k", payloads, batch_size=10, progress=False, transport=_fake_api(seen))

    assert result.statuses == {"200": 3}
    assert sorted(len(body["applicants"]) for _, body, _ in seen) == [5, 10, 10]
    assert {path for path, _, _ in seen} == {"/predict/batch"}


def test_send_reports_an_unreachable_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    result = send("http://api", "k", [{"x": 1}] * 3, progress=False, transport=httpx.MockTransport(refuse))
    assert result.statuses == {"ConnectError": 3}
