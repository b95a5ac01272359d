"""Realised performance: how the served model ranked and decided, once outcomes came back.

On the decisions whose outcome is known, per time window and model version: AUC with a 95%
DeLong confidence interval, the business cost per applicant (the threshold's own objective:
10 x a missed default + 1 x a refused good client), refusal and default rates, calibration
(observed vs predicted default rate by score decile, Brier score), label coverage and delay.
With a challenger in the records, both models on the same applicants: agreement, decision
flips, score correlation, and each one's realised AUC and cost (paired DeLong test of the gap).

The degradation test (exit code 1 of `python -m monitoring performance`), per window with at
least `min_defaults` defaults and as many good clients, against the labelled reference sample
the artifact ships (the model's own scores of held-out training-world applicants):
- ranking: AUC below the reference's, one-sided z = (AUC_ref - AUC) / sqrt(se_ref^2 + se^2) > z_auc;
- calibration in the large: the mean gap (observed - predicted) differs from the reference's,
  |z| > z_calibration (two-sample z on y - p).
Both thresholds are chosen for few false alarms (docs/monitoring_calibration.md measures them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from monitoring.artifacts import PREDICTION, PROBABILITY
from monitoring.outcomes import DEFAULTED

MISSED_DEFAULT_COST = 10.0
REFUSED_GOOD_COST = 1.0
Z95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class PerformanceConfig:
    z_auc: float = 3.09
    """One-sided z for 'AUC fell' (p < 0.001)."""
    z_calibration: float = 3.29
    """Two-sided z for 'calibration moved' (p < 0.001)."""
    min_defaults: int = 30
    """Fewer defaults (or good clients) in a window: its metrics are reported, not tested."""


def delong(y: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of each score and their covariance matrix (DeLong 1988, Sun & Xu 2014 midranks)."""
    y = np.asarray(y).astype(bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    aucs, v10, v01 = [], [], []
    for score in scores:
        s = np.asarray(score, dtype=np.float64)
        pos, neg = s[y], s[~y]
        ranks_all = rankdata(np.concatenate([pos, neg]))
        ranks_pos, ranks_neg = rankdata(pos), rankdata(neg)
        aucs.append((ranks_all[:positives].sum() - positives * (positives + 1) / 2) / (positives * negatives))
        v10.append((ranks_all[:positives] - ranks_pos) / negatives)  # per positive: share of negatives below
        v01.append(1.0 - (ranks_all[positives:] - ranks_neg) / positives)  # per negative: share of positives above
    s10 = np.atleast_2d(np.cov(np.array(v10)))
    s01 = np.atleast_2d(np.cov(np.array(v01)))
    return np.array(aucs), s10 / positives + s01 / negatives


def _auc_block(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    if y.sum() < 2 or (1 - y).sum() < 2:
        return {"auc": None, "auc_se": None, "auc_ci95": None}
    aucs, cov = delong(y, p)
    se = float(np.sqrt(cov[0, 0]))
    auc = float(aucs[0])
    return {"auc": auc, "auc_se": se, "auc_ci95": [max(0.0, auc - Z95 * se), min(1.0, auc + Z95 * se)]}


def business_cost(y: np.ndarray, refused: np.ndarray) -> float:
    """Cost per applicant: 10 per default accepted, 1 per good client refused."""
    missed = np.sum((y == 1) & (refused == 0))
    refused_good = np.sum((y == 0) & (refused == 1))
    return float((MISSED_DEFAULT_COST * missed + REFUSED_GOOD_COST * refused_good) / max(len(y), 1))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Observed vs mean predicted default rate per score decile (equal-count bins by rank)."""
    if len(y) == 0:
        return []
    order = np.argsort(p, kind="stable")
    table = []
    for n, part in enumerate(np.array_split(order, min(bins, len(y)))):
        if len(part):
            table.append(
                {
                    "decile": n + 1,
                    "n": len(part),
                    "predicted": float(p[part].mean()),
                    "observed": float(y[part].mean()),
                    "score_max": float(p[part].max()),
                }
            )
    return table


def metrics(y: np.ndarray, p: np.ndarray, refused: np.ndarray) -> dict[str, Any]:
    """The performance block of one set of labelled decisions."""
    y, p, refused = np.asarray(y, dtype=float), np.asarray(p, dtype=float), np.asarray(refused, dtype=float)
    gap = y - p
    return {
        "labelled": len(y),
        "defaults": int(y.sum()),
        **_auc_block(y, p),
        "cost_per_applicant": business_cost(y, refused),
        "refusal_rate": float(refused.mean()) if len(y) else None,
        "default_rate": float(y.mean()) if len(y) else None,
        "predicted_default_rate": float(p.mean()) if len(y) else None,
        "calibration_gap": float(gap.mean()) if len(y) else None,
        "calibration_gap_se": float(gap.std(ddof=1) / np.sqrt(len(y))) if len(y) > 1 else None,
        "brier": float(np.mean(gap**2)) if len(y) else None,
        "calibration": calibration_table(y, p),
    }


def reference_metrics(reference: pd.DataFrame, target: str = "TARGET") -> dict[str, Any]:
    """The same block on the artifact's labelled reference sample (the baseline of the test)."""
    return metrics(reference[target].to_numpy(), reference[PROBABILITY].to_numpy(), reference[PREDICTION].to_numpy())


def degradation(block: dict[str, Any], reference: dict[str, Any], config: PerformanceConfig) -> dict[str, Any]:
    """The test of one window's block against the reference's: tested or not, and what it found."""
    enough = block["defaults"] >= config.min_defaults and block["labelled"] - block["defaults"] >= config.min_defaults
    if not enough or block["auc"] is None or reference["auc"] is None:
        return {"tested": False, "degraded": False, "auc_z": None, "calibration_z": None}
    auc_z = (reference["auc"] - block["auc"]) / np.hypot(reference["auc_se"], block["auc_se"])
    calibration_z = (block["calibration_gap"] - reference["calibration_gap"]) / np.hypot(
        reference["calibration_gap_se"], block["calibration_gap_se"]
    )
    ranking, calibration = bool(auc_z > config.z_auc), bool(abs(calibration_z) > config.z_calibration)
    return {
        "tested": True,
        "degraded": ranking or calibration,
        "ranking_degraded": ranking,
        "calibration_degraded": calibration,
        "auc_z": float(auc_z),
        "calibration_z": float(calibration_z),
    }


def challenger_comparison(frame: pd.DataFrame) -> dict[str, Any] | None:
    """Champion vs challenger on the applicants both scored (and on those labelled among them)."""
    if "challenger_probability" not in frame:
        return None
    both = frame[frame["challenger_probability"].notna()]
    if both.empty:
        return None
    champion, challenger = both[PROBABILITY].to_numpy(float), both["challenger_probability"].to_numpy(float)
    ours, theirs = both[PREDICTION].to_numpy(int), both["challenger_prediction"].to_numpy(int)
    out: dict[str, Any] = {
        "challenger_versions": sorted(str(v) for v in both["challenger_version"].dropna().unique()),
        "applicants": len(both),
        "agreement": float((ours == theirs).mean()),
        "flips_to_refused": int(((ours == 0) & (theirs == 1)).sum()),
        "flips_to_accepted": int(((ours == 1) & (theirs == 0)).sum()),
        "score_pearson": float(np.corrcoef(champion, challenger)[0, 1]) if len(both) > 1 else None,
        "score_spearman": float(pd.Series(champion).corr(pd.Series(challenger), method="spearman"))
        if len(both) > 1
        else None,
        "refusal_rate": {"champion": float(ours.mean()), "challenger": float(theirs.mean())},
    }
    labelled = both[both[DEFAULTED].notna()]
    y = labelled[DEFAULTED].to_numpy(float)
    out["labelled"] = len(labelled)
    if len(labelled) and y.sum() >= 2 and (1 - y).sum() >= 2:
        aucs, cov = delong(y, labelled[PROBABILITY].to_numpy(float), labelled["challenger_probability"].to_numpy(float))
        gap_se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
        gap = float(aucs[1] - aucs[0])
        out["realised"] = {
            "champion": {
                "auc": float(aucs[0]),
                "cost_per_applicant": business_cost(y, labelled[PREDICTION].to_numpy(int)),
            },
            "challenger": {
                "auc": float(aucs[1]),
                "cost_per_applicant": business_cost(y, labelled["challenger_prediction"].to_numpy(int)),
            },
            "auc_gap": gap,
            "auc_gap_ci95": [gap - Z95 * gap_se, gap + Z95 * gap_se],
            "auc_gap_p_value": float(2 * norm.sf(abs(gap) / gap_se)) if gap_se > 0 else None,
        }
    else:
        out["realised"] = None
    return out


def performance_by_window(
    labelled: pd.DataFrame,
    reference: dict[str, Any],
    config: PerformanceConfig = PerformanceConfig(),
    window: str | None = "1D",
) -> list[dict[str, Any]]:
    """One entry per (time window, model version) of the decisions: coverage, delay, metrics, test."""
    if labelled.empty:
        return []
    frame = labelled.copy()
    frame["window_start"] = frame["ts"].dt.floor(window) if window else frame["ts"].min()
    entries = []
    for (start, version), part in frame.groupby(["window_start", "model_version"], sort=True, dropna=False):
        known = part[part[DEFAULTED].notna()]
        block = metrics(known[DEFAULTED].to_numpy(), known[PROBABILITY].to_numpy(), known[PREDICTION].to_numpy())
        delays = known["label_delay_days"].dropna()
        entries.append(
            {
                "window_start": pd.Timestamp(start).isoformat(),
                "window": window or "all",
                "model_version": None if pd.isna(version) else str(version),
                "decisions": len(part),
                "label_coverage": len(known) / len(part),
                "label_delay_days": {
                    "median": float(delays.median()) if len(delays) else None,
                    "p90": float(delays.quantile(0.9)) if len(delays) else None,
                },
                "decision_refusal_rate": float(part[PREDICTION].mean()),
                **block,
                "test": degradation(block, reference, config),
                "challenger": challenger_comparison(part),
            }
        )
    return entries


def summarize(
    labelled: pd.DataFrame, reference: dict[str, Any], config: PerformanceConfig, window: str | None
) -> dict[str, Any]:
    """The JSON summary of `python -m monitoring performance`."""
    windows = performance_by_window(labelled, reference, config, window)
    known = labelled[labelled[DEFAULTED].notna()] if len(labelled) else labelled
    overall = (
        metrics(known[DEFAULTED].to_numpy(), known[PROBABILITY].to_numpy(), known[PREDICTION].to_numpy())
        if len(known)
        else None
    )
    return {
        "decisions": len(labelled),
        "labelled": len(known),
        "label_coverage": len(known) / len(labelled) if len(labelled) else None,
        "config": asdict(config),
        "reference": {k: v for k, v in reference.items() if k != "calibration"},
        "overall": overall,
        "challenger": challenger_comparison(labelled) if len(labelled) else None,
        "windows": windows,
        "tested_windows": sum(1 for w in windows if w["test"]["tested"]),
        "degraded_windows": [
            {"window_start": w["window_start"], "model_version": w["model_version"], **w["test"]}
            for w in windows
            if w["test"]["degraded"]
        ],
        "performance_degraded": any(w["test"]["degraded"] for w in windows),
    }
