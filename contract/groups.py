"""The protected groups every stage reports on: gender, and age band from DAYS_BIRTH.

Training's fairness report (test set, with outcomes) and monitoring's refusal rates by group
(production decisions, by time window) cut applicants into the same groups with these
functions. numpy only: no pandas in the contract.
"""

from __future__ import annotations

from typing import Any

import numpy as np

GENDER = "CODE_GENDER"
AGE_SOURCE = "DAYS_BIRTH"
MISSING_GROUP = "missing"
# Upper bounds in years (exclusive) and labels; the last band is open.
AGE_BANDS: tuple[tuple[float, str], ...] = ((25, "<25"), (40, "25-39"), (60, "40-59"), (np.inf, "60+"))


def age_bands(days_birth: Any) -> np.ndarray:
    """DAYS_BIRTH (negative days) -> the age band label of each applicant."""
    years = -np.asarray(days_birth, dtype=np.float64) / 365.25
    uppers = np.array([upper for upper, _ in AGE_BANDS])
    labels = np.array([label for _, label in AGE_BANDS], dtype=object)
    return labels[np.searchsorted(uppers, years, side="right")]


def genders(values: Any) -> np.ndarray:
    """CODE_GENDER values, a missing one as "missing"."""
    out = np.asarray(values, dtype=object).copy()
    out[np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in out], dtype=bool)] = MISSING_GROUP
    return out


def group_order(group: object) -> tuple[int, str]:
    """Age bands youngest first, other groups alphabetically."""
    labels = [label for _, label in AGE_BANDS]
    return (labels.index(group), "") if group in labels else (len(labels), str(group))


def group_outcomes(groups: np.ndarray, refused: np.ndarray, defaulted: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """Per group: size, refusal rate and, with outcomes, defaulters and the share of them refused
    (None without defaulters)."""
    groups, refused = np.asarray(groups, dtype=object), np.asarray(refused)
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(set(groups.tolist()), key=group_order):
        member = groups == group
        entry: dict[str, Any] = {"n": int(member.sum()), "refusal_rate": float(refused[member].mean())}
        if defaulted is not None:
            defaulters = member & (np.asarray(defaulted) == 1)
            entry["defaulters"] = int(defaulters.sum())
            entry["defaulters_refused_share"] = float(refused[defaulters].mean()) if defaulters.any() else None
        out[str(group)] = entry
    return out
