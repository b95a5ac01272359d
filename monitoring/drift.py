"""Data drift between the training reference sample and production records, with Evidently 0.7.

One Evidently report holds three families of checks, and the verdict is read back from
Evidently's own test results (``snapshot.dict()["tests"]``), never recomputed here:

- feature drift: `DataDriftPreset` on the 120 inputs, one test per column (`ValueDrift`)
  and the dataset test (`DriftedColumnsCount`: share of drifted columns < `drift_share`);
- score drift: `ValueDrift` on the model's `probability`;
- missing-value drift: `MissingValueCount` per nullable input, share within +-`missing_tolerance`
  of the reference's. Evidently drops missing values before comparing distributions, so
  "EXT_SOURCE_3 now missing twice as often" is invisible to the drift tests alone.

Per-column tests are p-values (KS and Mann-Whitney combined for numbers, a chi-square
contingency test for categories), not Evidently's size-based default (Wasserstein / Jensen-
Shannon distances at 0.1): on windows of 300-2000 requests the distances' sampling noise alone
flags several of the 120 columns in most undrifted windows, so a single drifted column could
not be told from noise. A p-value's false-alarm rate does not depend on the window size; at
1e-4 on 120 columns, false alarms stay rare and one truly drifted column is enough to flag the
dataset (`drift_share` just under 1/120).
The numbers behind these choices: docs/monitoring_calibration.md (`python -m monitoring calibrate`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
from evidently.legacy.core import ColumnType
from evidently.metrics import DriftedColumnsCount, MissingValueCount, ValueDrift
from evidently.presets import DataDriftPreset
from evidently.tests import Reference, eq
from scipy.stats import chi2_contingency, ks_2samp, mannwhitneyu

from contract.spec import FeatureSpec
from monitoring.artifacts import PROBABILITY
from monitoring.config import CHI2_CONTINGENCY, KS_MANN_WHITNEY, DriftConfig

_MIN_EXPECTED = 5.0  # the chi-square approximation needs about 5 expected counts per cell
_MIN_DISTINCT_FOR_RANKS = 10  # below: KS alone (see _ks_mann_whitney)


def _chi2_contingency(
    reference_data: pd.Series, current_data: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """p-value of a chi-square test of homogeneity between the two samples' level counts.

    Evidently's own ``chisquare`` is a goodness-of-fit test against the reference shares: it
    treats the reference as exact (too many alarms for rare levels) and fails outright when the
    current window holds a level the reference never saw. Here both samples are samples, and
    levels too rare for the approximation are pooled into one cell.
    """
    table = pd.concat([reference_data.value_counts(), current_data.value_counts()], axis=1).fillna(0.0)
    totals = table.sum(axis=0).to_numpy()
    expected_min = table.sum(axis=1).to_numpy()[:, None] * totals[None, :] / totals.sum()
    rare = expected_min.min(axis=1) < _MIN_EXPECTED
    counts = table.to_numpy()[~rare]
    if rare.any():
        counts = np.vstack([counts, table.to_numpy()[rare].sum(axis=0)])
    counts = counts[counts.sum(axis=1) > 0]
    if len(counts) < 2:
        return 1.0, False
    p_value = float(chi2_contingency(counts, correction=False).pvalue)
    return p_value, p_value < threshold


def _ks_mann_whitney(
    reference_data: pd.Series, current_data: pd.Series, feature_type: ColumnType, threshold: float
) -> tuple[float, bool]:
    """Bonferroni-combined p-value of Kolmogorov-Smirnov and Mann-Whitney U: min(1, 2 * min(p)).

    KS sees any change of shape but is weak for a small move of the median in a skewed column
    (incomes x1.1); Mann-Whitney's rank test is the most powerful of the two for such a move.
    Doubling the smaller p-value keeps the false-alarm rate at or under the threshold. A column
    with few distinct values (0/1 flags) gets KS alone: there the rank test's normal approximation
    is far too confident in the tail (FLAG_DOCUMENT_17, all 0 in the reference, gave p = 4e-5 for
    one applicant in 300 with a 1, and false alarms in 10% of undrifted 300-applicant windows).
    """
    reference, current = reference_data.dropna().to_numpy(), current_data.dropna().to_numpy()
    if len(reference) == 0 or len(current) == 0:
        return 1.0, False
    ks = float(ks_2samp(reference, current).pvalue)
    if np.unique(np.concatenate([reference, current])).size < _MIN_DISTINCT_FOR_RANKS:
        return ks, ks < threshold
    rank = float(mannwhitneyu(reference, current, method="asymptotic").pvalue)
    p_value = min(1.0, 2.0 * min(ks, rank))
    return p_value, p_value < threshold


register_stattest(
    StatTest(
        name=KS_MANN_WHITNEY,
        display_name="KS + Mann-Whitney p_value",
        allowed_feature_types=[ColumnType.Numerical],
        default_threshold=1e-4,
    ),
    default_impl=_ks_mann_whitney,
)

register_stattest(
    StatTest(
        name=CHI2_CONTINGENCY,
        display_name="chi-square contingency p_value",
        allowed_feature_types=[ColumnType.Categorical],
        default_threshold=1e-4,
    ),
    default_impl=_chi2_contingency,
)


@dataclass
class DriftResult:
    snapshot: Snapshot
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def drift_detected(self) -> bool:
        return bool(self.summary["drift_detected"])

    def save_html(self, path: str) -> None:
        self.snapshot.save_html(path)


def _usable(column: str, reference: pd.DataFrame, current: pd.DataFrame) -> bool:
    # Evidently refuses a drift test on a column with no value on one side (e.g. OWN_CAR_AGE
    # in a small window without car owners); such a column is left to the missing-value test.
    return bool(reference[column].notna().any() and current[column].notna().any())


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    config: DriftConfig | None = None,
    *,
    detailed: bool = True,
) -> DriftResult:
    """Run the Evidently report of `current` against `reference` (both typed by the spec).

    `detailed=False` leaves out the per-column widgets (the slow part: plotly figures for 120
    columns) and keeps the same verdict: for repeated runs (calibration) and quick checks.
    The per-column scores then come back empty.
    """
    config = config or DriftConfig()
    if current.empty:
        raise ValueError("no current records to compare")
    columns = [name for name in spec.names if _usable(name, reference, current)]
    skipped = [name for name in spec.names if name not in columns]
    with_score = PROBABILITY in reference and PROBABILITY in current and current[PROBABILITY].notna().any()
    nullable = [f.name for f in spec.features if f.nullable]

    drift_options: dict[str, Any] = {
        "columns": columns,
        "drift_share": config.drift_share(len(columns)),
        "num_method": config.num_method,
        "cat_method": config.cat_method,
        "num_threshold": config.threshold,
        "cat_threshold": config.threshold,
    }
    metrics: list[Any] = [DataDriftPreset(**drift_options) if detailed else DriftedColumnsCount(**drift_options)]
    if with_score:
        metrics.append(ValueDrift(column=PROBABILITY, method=config.score_method, threshold=config.score_threshold))
    metrics += [
        MissingValueCount(column=name, share_tests=[eq(Reference(absolute=config.missing_tolerance))])
        for name in nullable
    ]

    definition = DataDefinition(
        numerical_columns=spec.numeric_names + ([PROBABILITY] if with_score else []),
        categorical_columns=spec.categorical_names,
    )
    keep = spec.names + ([PROBABILITY] if with_score else [])
    snapshot = Report(metrics, include_tests=True).run(
        current_data=Dataset.from_pandas(current[keep], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[keep], data_definition=definition),
    )
    summary = summarize(snapshot, spec, reference, current, config, n_columns=len(columns))
    summary["skipped_columns"] = skipped
    return DriftResult(snapshot, summary)


def summarize(
    snapshot: Snapshot,
    spec: FeatureSpec,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: DriftConfig,
    n_columns: int,
) -> dict[str, Any]:
    """The JSON summary, read from the snapshot's metrics and Evidently's test verdicts."""
    data = snapshot.dict()
    failed: dict[str, list[str]] = {}
    errors: list[str] = []  # a test Evidently could not compute is reported, not taken for drift
    for test in data["tests"]:
        if test["status"] == "FAIL":
            failed.setdefault(test["metric_config"]["metric_id"], []).append(test["id"])
        elif test["status"] == "ERROR":
            errors.append(test["name"])

    dataset: dict[str, Any] = {}
    columns: list[dict[str, Any]] = []
    score: dict[str, Any] | None = None
    missing: list[dict[str, Any]] = []
    for metric in data["metrics"]:
        kind = metric["config"]["type"].rsplit(":", 1)[-1]
        drifted = metric["id"] in failed
        if kind == "DriftedColumnsCount":
            dataset = {
                "count": int(metric["value"]["count"]),
                "share": float(metric["value"]["share"]),
                "drifted": drifted,
            }
        elif kind == "ValueDrift":
            entry = {
                "column": metric["config"]["column"],
                "method": metric["config"].get("method"),
                "score": float(metric["value"]),
                "threshold": metric["config"].get("threshold"),
                "drifted": drifted,
            }
            if entry["column"] == PROBABILITY:
                score = {
                    **entry,
                    "reference_mean": float(reference[PROBABILITY].mean()),
                    "current_mean": float(current[PROBABILITY].mean()),
                }
            else:
                columns.append({**entry, "kind": spec[entry["column"]].kind})
        elif kind == "MissingValueCount" and drifted:
            name = metric["config"]["column"]
            missing.append(
                {
                    "column": name,
                    "reference_share": float(reference[name].isna().mean()),
                    "current_share": float(metric["value"]["share"]),
                }
            )

    columns.sort(key=lambda c: (not c["drifted"], c["score"]))  # most drifted first
    drifted_columns = [
        {
            **{k: c[k] for k in ("column", "kind", "method", "score", "threshold")},
            "reference": column_stats(reference[c["column"]], c["kind"]),
            "current": column_stats(current[c["column"]], c["kind"]),
        }
        for c in columns
        if c["drifted"]
    ]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "drift_detected": bool(dataset.get("drifted") or (score and score["drifted"]) or missing),
        "dataset_drift": bool(dataset.get("drifted")),
        "reference_rows": len(reference),
        "current_rows": len(current),
        "column_count": n_columns,
        "drifted_column_count": dataset.get("count", 0),
        "drift_share": dataset.get("share", 0.0),
        "drift_share_threshold": config.drift_share(n_columns),
        "drifted_columns": drifted_columns,
        "columns": [{k: c[k] for k in ("column", "kind", "method", "score", "drifted")} for c in columns],
        "score_drift": score,
        "missing_value_drift": missing,
        "test_errors": errors,
        "config": asdict(config),
    }


def column_stats(values: pd.Series, kind: str, top: int = 3) -> dict[str, Any]:
    """What a reader compares between the two sides: centre and spread, or the top levels' shares."""
    present = values.dropna()
    stats: dict[str, Any] = {"missing_share": round(float(values.isna().mean()), 4)}
    if present.empty:
        return stats
    if kind == "numeric":
        numbers = present.astype("float64")
        stats |= {
            name: float(f"{value:.4g}")  # 4 significant digits: what a reader compares
            for name, value in {
                "mean": numbers.mean(),
                "median": numbers.median(),
                "p05": numbers.quantile(0.05),
                "p95": numbers.quantile(0.95),
            }.items()
        }
    else:
        shares = present.astype(str).value_counts(normalize=True).head(top)
        stats["top_levels"] = [[str(level), round(float(value), 4)] for level, value in shares.items()]
    return stats


def details_snapshot(
    reference: pd.DataFrame, current: pd.DataFrame, spec: FeatureSpec, summary: dict[str, Any]
) -> Snapshot | None:
    """Evidently's report for the drifted columns and the score only: their distributions, a few MB.

    None when there is nothing to show (no drifted column, no score).
    """
    columns = [c["column"] for c in summary["drifted_columns"]]
    score = summary.get("score_drift")
    metrics: list[Any] = [
        ValueDrift(column=c["column"], method=c["method"], threshold=c["threshold"]) for c in summary["drifted_columns"]
    ]
    if score:
        metrics.append(ValueDrift(column=PROBABILITY, method=score["method"], threshold=score["threshold"]))
        columns.append(PROBABILITY)
    if not metrics:
        return None
    definition = DataDefinition(
        numerical_columns=[c for c in columns if c == PROBABILITY or spec[c].kind == "numeric"],
        categorical_columns=[c for c in columns if c != PROBABILITY and spec[c].kind != "numeric"],
    )
    return Report(metrics).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )


def drift_by_window(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    spec: FeatureSpec,
    config: DriftConfig | None = None,
    *,
    windows: int = 4,
    min_rows: int = 200,
) -> pd.DataFrame:
    """The lean drift verdict on consecutive windows of `current` (in time order): when did it start?

    At most `windows` windows of equal size, none smaller than `min_rows` (below a few hundred
    rows the tests have little power; see docs/monitoring_calibration.md).
    """
    count = max(1, min(windows, len(current) // min_rows))
    rows = []
    for part in np.array_split(np.arange(len(current)), count):
        window = current.iloc[part]
        summary = run_drift(reference, window, spec, config, detailed=False).summary
        rows.append(
            {
                "start": window["ts"].iloc[0] if "ts" in window else part[0],
                "end": window["ts"].iloc[-1] if "ts" in window else part[-1],
                "rows": len(window),
                "drift_detected": summary["drift_detected"],
                "drifted_columns": summary["drifted_column_count"],
                "score_drift": None if summary["score_drift"] is None else summary["score_drift"]["drifted"],
                "missing_value_drift": ", ".join(m["column"] for m in summary["missing_value_drift"]),
            }
        )
    return pd.DataFrame(rows)
