"""Refusal rate by protected group (gender; age band <25, 25-39, 40-59, 60+), per time window.

The groups are training's fairness groups (`contract.groups`): the drift summary and the
notebook show how often each group is refused in production, next to the test-set rates the
model card reports. Protected attributes are recorded with each decision, never model inputs.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from contract.groups import AGE_SOURCE, GENDER, age_bands, genders, group_outcomes
from monitoring.artifacts import PREDICTION

GROUPINGS = ("gender", "age_band")


def group_labels(predictions: pd.DataFrame) -> dict[str, Any]:
    """Each applicant's gender and age band (columns absent from the records: that grouping is left out)."""
    out = {}
    if GENDER in predictions:
        out["gender"] = genders(predictions[GENDER].to_numpy(dtype=object))
    if AGE_SOURCE in predictions:
        out["age_band"] = age_bands(predictions[AGE_SOURCE].to_numpy(dtype="float64"))
    return out


def refusal_by_group(predictions: pd.DataFrame, window: str | None = "1D") -> dict[str, Any]:
    """Refusal rate and size per group over the whole period, and per time window."""
    if predictions.empty:
        return {"window": window, "overall": {}, "windows": []}
    labels = group_labels(predictions)
    refused = predictions[PREDICTION].to_numpy(dtype="float64")
    overall = {name: group_outcomes(groups, refused, None) for name, groups in labels.items()}
    windows = []
    if window:
        starts = predictions["ts"].dt.floor(window)
        for start in sorted(starts.unique()):
            member = (starts == start).to_numpy()
            entry: dict[str, Any] = {"window_start": pd.Timestamp(start).isoformat(), "decisions": int(member.sum())}
            for name, groups in labels.items():
                entry[name] = group_outcomes(groups[member], refused[member], None)
            windows.append(entry)
    return {"window": window, "overall": overall, "windows": windows}


def refusal_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The per-window rates as a long table (window_start, grouping, group, n, refusal_rate), for plots."""
    rows = [
        {"window_start": pd.Timestamp(w["window_start"]), "grouping": name, "group": group, **values}
        for w in summary["windows"]
        for name in GROUPINGS
        for group, values in w.get(name, {}).items()
    ]
    return pd.DataFrame(rows, columns=["window_start", "grouping", "group", "n", "refusal_rate"])
