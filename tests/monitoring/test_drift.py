"""The drift report: undrifted windows pass, each kind of shift is flagged for the right reason.

Windows come from the synthetic generator (seeds the reference never uses); the generator's
true default probability stands in for the model's score. The full 120-column report with
per-column widgets takes ~15 s, so the per-column checks run on a 12-column spec (same code
path, same parsing) and the 120-column checks use the lean report (same verdict).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contract.spec import FeatureSpec
from monitoring.artifacts import PROBABILITY, load_feature_spec, typed_frame
from monitoring.config import DriftConfig
from monitoring.drift import _chi2_contingency, run_drift
from monitoring.simulate import apply_shift, combine
from training.synthetic import TRUE_PROBABILITY_COLUMN, generate

SPEC = load_feature_spec(None)
SMALL = FeatureSpec(
    tuple(
        SPEC[name]
        for name in (
            "NAME_CONTRACT_TYPE",
            "CODE_GENDER",
            "AMT_INCOME_TOTAL",
            "AMT_CREDIT",
            "NAME_EDUCATION_TYPE",
            "ORGANIZATION_TYPE",
            "DAYS_BIRTH",
            "OWN_CAR_AGE",
            "FLAG_DOCUMENT_3",
            "EXT_SOURCE_1",
            "EXT_SOURCE_2",
            "EXT_SOURCE_3",
        )
    )
)


def _window(n: int, seed: int, shift: str = "none", spec: FeatureSpec = SPEC) -> pd.DataFrame:
    raw = generate(n, seed=seed)
    frame = apply_shift(raw, combine([shift]), SPEC, seed=seed)
    # The true probability moves with the shifted inputs only through EXT_SOURCE here; that
    # is enough to exercise the score check (a real model is used in test_notebook).
    frame[PROBABILITY] = raw[TRUE_PROBABILITY_COLUMN].where(frame["EXT_SOURCE_3"].notna(), 0.25)
    return typed_frame(frame, spec)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _window(3000, seed=424242)


def test_an_undrifted_window_is_not_flagged(reference: pd.DataFrame) -> None:
    summary = run_drift(reference, _window(1000, seed=7), SPEC, detailed=False).summary

    assert summary["drift_detected"] is False
    assert summary["drifted_column_count"] == 0
    assert summary["score_drift"]["drifted"] is False
    assert summary["missing_value_drift"] == []
    assert summary["column_count"] == 120
    assert summary["current_rows"] == 1000 and summary["reference_rows"] == 3000


def test_all_shifts_at_once_are_flagged_on_120_columns(reference: pd.DataFrame) -> None:
    summary = run_drift(reference, _window(1000, seed=8, shift="all"), SPEC, detailed=False).summary

    assert summary["drift_detected"] is True
    assert summary["dataset_drift"] is True
    assert summary["drifted_column_count"] == 2  # income and education, and nothing else
    assert summary["drifted_columns"] == []  # lean report: verdict without per-column scores
    assert summary["score_drift"]["drifted"] is True
    assert {m["column"] for m in summary["missing_value_drift"]} == {"EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"}


@pytest.mark.parametrize(
    ("shift", "drifted", "missing"),
    [
        ("income", ["AMT_INCOME_TOTAL"], []),
        ("category", ["NAME_EDUCATION_TYPE"], []),
        ("missing", [], ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]),
    ],
)
def test_each_shift_is_flagged_for_its_own_reason(
    reference: pd.DataFrame, tmp_path: Path, shift: str, drifted: list[str], missing: list[str]
) -> None:
    current = _window(800, seed=9, shift=shift, spec=SMALL)
    result = run_drift(reference[[*SMALL.names, PROBABILITY]], current, SMALL)
    summary = result.summary

    assert summary["drift_detected"] is True
    assert [c["column"] for c in summary["drifted_columns"]] == drifted
    assert [m["column"] for m in summary["missing_value_drift"]] == missing
    for column in summary["drifted_columns"]:
        assert column["method"] in ("ks_mannwhitney", "chi2_contingency")
        assert 0 <= column["score"] < column["threshold"]
    for entry in summary["missing_value_drift"]:
        assert entry["current_share"] > entry["reference_share"] + 0.1
    if shift == "missing":  # the placeholder score of rows without EXT_SOURCE_3 moves the scores
        assert summary["score_drift"]["drifted"] is True
    assert summary["drift_share"] == pytest.approx(len(drifted) / len(SMALL))
    result.save_html(str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text()
    assert re.search(r"<script[^>]*\ssrc=", html) is None  # self-contained: opens offline
    assert "AMT_INCOME_TOTAL" in html


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # Evidently's stats of an empty column
def test_a_column_empty_in_the_window_is_skipped_not_fatal(reference: pd.DataFrame) -> None:
    current = _window(300, seed=10, spec=SMALL)
    current["OWN_CAR_AGE"] = np.nan  # a small window without car owners
    summary = run_drift(reference[[*SMALL.names, PROBABILITY]], current, SMALL, detailed=False).summary

    assert summary["skipped_columns"] == ["OWN_CAR_AGE"]
    assert [m["column"] for m in summary["missing_value_drift"]] == ["OWN_CAR_AGE"]


def test_without_scores_there_is_no_score_check(reference: pd.DataFrame) -> None:
    current = _window(300, seed=11, spec=SMALL).drop(columns=[PROBABILITY])
    summary = run_drift(reference[[*SMALL.names, PROBABILITY]], current, SMALL, detailed=False).summary

    assert summary["score_drift"] is None


def test_chi2_contingency_is_a_two_sample_test() -> None:
    rng = np.random.default_rng(0)
    levels = np.array(["a", "b", "c", "rare"])
    reference = pd.Series(rng.choice(levels, 5000, p=[0.5, 0.3, 0.1995, 0.0005]))
    same = pd.Series(rng.choice(levels, 1000, p=[0.5, 0.3, 0.1995, 0.0005]))
    shifted = pd.Series(rng.choice(levels, 1000, p=[0.35, 0.45, 0.1995, 0.0005]))
    unseen = pd.concat([same, pd.Series(["never-seen"] * 3)])

    assert _chi2_contingency(reference, same, None, 1e-5)[1] is False  # type: ignore[arg-type]
    assert _chi2_contingency(reference, shifted, None, 1e-5)[1] is True  # type: ignore[arg-type]
    p_value, drifted = _chi2_contingency(reference, unseen, None, 1e-5)  # type: ignore[arg-type]
    assert 0 < p_value <= 1 and drifted is False  # a new rare level is pooled, not a crash
    assert _chi2_contingency(reference[:1], same[:1], None, 1e-5) == (1.0, False)  # type: ignore[arg-type]


def test_drift_share_sits_between_counts() -> None:
    assert DriftConfig().drift_share(120) == pytest.approx(0.5 / 120)
    assert 2 / 120 > DriftConfig(min_drifted_columns=2).drift_share(120) > 1 / 120
