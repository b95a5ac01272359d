"""Realised-performance numbers against cases computed by hand, and the join of outcomes to decisions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score

from monitoring.outcomes import label
from monitoring.realised import (
    PerformanceConfig,
    business_cost,
    calibration_table,
    challenger_comparison,
    degradation,
    delong,
    metrics,
    summarize,
)

# Three defaults (0.9, 0.4, 0.8) and three good clients (0.1, 0.5, 0.2); refused at p >= 0.45.
Y = np.array([1, 0, 1, 0, 0, 1])
P = np.array([0.9, 0.1, 0.4, 0.5, 0.2, 0.8])
REFUSED = (P >= 0.45).astype(int)  # [1, 0, 0, 1, 0, 1]


def test_hand_computed_case() -> None:
    block = metrics(Y, P, REFUSED)
    # 8 of the 9 (default, good) pairs are ranked right: 0.4 sits below the good 0.5.
    assert block["auc"] == pytest.approx(8 / 9)
    # DeLong: per default, share of good clients below = (1, 2/3, 1); per good client, share of
    # defaults above = (1, 2/3, 1); each sample variance is 1/27, so var = 1/27/3 + 1/27/3 = 2/81.
    assert block["auc_se"] == pytest.approx(math.sqrt(2) / 9)
    # One default accepted (0.4: 10) and one good client refused (0.5: 1), over 6 applicants.
    assert block["cost_per_applicant"] == pytest.approx(11 / 6)
    assert block["refusal_rate"] == pytest.approx(0.5) and block["default_rate"] == pytest.approx(0.5)
    assert block["brier"] == pytest.approx((0.01 + 0.01 + 0.36 + 0.25 + 0.04 + 0.04) / 6)
    assert block["calibration_gap"] == pytest.approx(Y.mean() - P.mean())


def test_against_reference_implementations() -> None:
    rng = np.random.default_rng(3)
    p = rng.random(3000)
    y = (rng.random(3000) < p).astype(int)
    block = metrics(y, p, (p > 0.5).astype(int))
    assert block["auc"] == pytest.approx(roc_auc_score(y, p))
    assert block["brier"] == pytest.approx(brier_score_loss(y, p))
    # The DeLong standard error agrees with a bootstrap of the same sample.
    boot = [roc_auc_score(y[i], p[i]) for i in (rng.integers(0, 3000, 3000) for _ in range(300))]
    assert block["auc_se"] == pytest.approx(np.std(boot), rel=0.15)
    low, high = block["auc_ci95"]
    assert low < block["auc"] < high


def test_calibration_deciles_are_equal_count_bins() -> None:
    p = np.linspace(0.01, 0.99, 100)
    y = np.r_[np.zeros(50), np.ones(50)]
    table = calibration_table(y, p)
    assert [row["n"] for row in table] == [10] * 10
    assert table[0]["observed"] == 0 and table[-1]["observed"] == 1
    assert table[0]["predicted"] == pytest.approx(p[:10].mean())


def test_paired_delong_of_one_score_twice_has_no_gap() -> None:
    aucs, cov = delong(Y, P, P)
    assert aucs[0] == aucs[1]
    assert cov[0, 0] + cov[1, 1] - 2 * cov[0, 1] == pytest.approx(0.0)


def test_degradation_test_uses_both_standard_errors() -> None:
    reference = {"auc": 0.76, "auc_se": 0.012, "calibration_gap": 0.0, "calibration_gap_se": 0.004}
    block = {"defaults": 200, "labelled": 2500, "auc": 0.70, "auc_se": 0.016, "calibration_gap": 0.001}
    block["calibration_gap_se"] = 0.005
    result = degradation(block, reference, PerformanceConfig())
    assert result["auc_z"] == pytest.approx(0.06 / math.hypot(0.012, 0.016))  # 3.0: just below 3.09
    assert result["tested"] and not result["degraded"]
    assert degradation({**block, "auc": 0.69}, reference, PerformanceConfig())["ranking_degraded"]
    assert degradation({**block, "calibration_gap": 0.03}, reference, PerformanceConfig())["calibration_degraded"]
    assert not degradation({**block, "defaults": 10}, reference, PerformanceConfig())["tested"]


def _decisions(n: int, start: str = "2026-06-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="h", tz="UTC"),
            "request_id": [f"r{i}" for i in range(n)],
            "application_id": [f"A{i}" for i in range(n)],
            "model_version": "3",
            "probability": np.linspace(0.05, 0.95, n),
            "prediction": (np.linspace(0.05, 0.95, n) >= 0.5).astype(float),
            "threshold": 0.5,
        }
    )


def _outcomes(ids: list[str], defaulted: list[bool], kind: str = "application_id") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id_kind": kind,
            "id": ids,
            "defaulted": defaulted,
            "observed_at": pd.Timestamp("2026-09-01", tz="UTC"),
            "received_at": pd.Timestamp("2026-09-02", tz="UTC"),
        }
    )


def test_label_joins_by_application_id_then_request_id() -> None:
    decisions = _decisions(4)
    decisions.loc[3, "application_id"] = None  # a /predict without an application id
    labelled = label(
        decisions, pd.concat([_outcomes(["A0", "A2"], [True, False]), _outcomes(["r3"], [True], "request_id")])
    )
    assert labelled["defaulted"].tolist()[0] == 1.0 and labelled["defaulted"].tolist()[2] == 0.0
    assert math.isnan(labelled["defaulted"].tolist()[1]) and labelled["defaulted"].tolist()[3] == 1.0
    assert labelled.loc[0, "label_delay_days"] == pytest.approx(
        (pd.Timestamp("2026-09-01", tz="UTC") - decisions.loc[0, "ts"]).total_seconds() / 86400
    )


def test_an_application_scored_twice_is_labelled_on_its_last_decision() -> None:
    decisions = _decisions(2)
    decisions["application_id"] = ["A0", "A0"]
    labelled = label(decisions, _outcomes(["A0"], [True]))
    assert math.isnan(labelled.loc[0, "defaulted"]) and labelled.loc[1, "defaulted"] == 1.0


def test_summary_per_window_and_version_with_coverage() -> None:
    decisions = _decisions(48)  # two days
    decisions.loc[24:, "model_version"] = "4"
    ids = [f"A{i}" for i in range(0, 48, 2)]  # half the decisions labelled
    labelled = label(decisions, _outcomes(ids, [i % 4 == 0 for i in range(0, 48, 2)]))
    reference = metrics(Y, P, REFUSED)
    summary = summarize(labelled, reference, PerformanceConfig(min_defaults=1), "1D")
    assert [(w["window_start"][:10], w["model_version"]) for w in summary["windows"]] == [
        ("2026-06-01", "3"),
        ("2026-06-02", "4"),
    ]
    assert all(w["label_coverage"] == 0.5 and w["decisions"] == 24 for w in summary["windows"])
    assert summary["label_coverage"] == 0.5 and summary["labelled"] == 24
    assert summary["windows"][0]["label_delay_days"]["median"] > 0


def test_challenger_comparison_on_the_same_applicants() -> None:
    frame = pd.DataFrame(
        {
            "probability": P,
            "prediction": REFUSED,
            "challenger_version": "c1",
            "challenger_probability": P[::-1],
            "challenger_prediction": (P[::-1] >= 0.45).astype(int),  # [1, 0, 1, 0, 0, 1]
            "defaulted": Y.astype(float),
        }
    )
    out = challenger_comparison(frame)
    assert out is not None
    assert out["agreement"] == pytest.approx(4 / 6)
    assert out["flips_to_refused"] == 1 and out["flips_to_accepted"] == 1  # applicants 2 and 3
    assert out["score_pearson"] == pytest.approx(np.corrcoef(P, P[::-1])[0, 1])
    realised = out["realised"]
    assert realised["champion"]["auc"] == pytest.approx(8 / 9)
    assert realised["challenger"]["auc"] == pytest.approx(roc_auc_score(Y, P[::-1]))
    assert realised["challenger"]["cost_per_applicant"] == pytest.approx(
        business_cost(Y, (P[::-1] >= 0.45).astype(int))
    )
    assert realised["auc_gap"] == pytest.approx(realised["challenger"]["auc"] - 8 / 9)


def test_refusal_rate_by_group_per_window() -> None:
    from monitoring.groups import refusal_by_group, refusal_table

    years = np.array([20, 30, 50, 70, 22, 35])
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2026-06-01T01:00"] * 3 + ["2026-06-02T01:00"] * 3, utc=True),
            "CODE_GENDER": ["F", "M", "F", None, "M", "F"],
            "DAYS_BIRTH": -(years * 365.25 + 10),
            "prediction": [1.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        }
    )
    summary = refusal_by_group(frame, "1D")
    assert summary["overall"]["gender"] == {
        "F": {"n": 3, "refusal_rate": pytest.approx(2 / 3)},
        "M": {"n": 2, "refusal_rate": 0.5},
        "missing": {"n": 1, "refusal_rate": 0.0},
    }
    assert list(summary["overall"]["age_band"]) == ["<25", "25-39", "40-59", "60+"]
    assert summary["overall"]["age_band"]["<25"] == {"n": 2, "refusal_rate": 1.0}
    first, second = summary["windows"]
    assert first["decisions"] == 3 and first["gender"]["F"]["refusal_rate"] == 0.5
    assert second["age_band"] == {"25-39": {"n": 1, "refusal_rate": 1.0}, "<25": {"n": 1, "refusal_rate": 1.0},
                                  "60+": {"n": 1, "refusal_rate": 0.0}}  # fmt: skip
    table = refusal_table(summary)
    assert len(table) == (2 + 3) + (3 + 3) and set(table["grouping"]) == {"gender", "age_band"}
