"""Proof that the served reasons are LightGBM's own TreeSHAP values, before anything is written.

On unseen rows (fed by the API's RowEncoder), the attributions the served graph computes
(export/shap_graph.py, in the same run as the score) and the explainer's base value must be within
TOLERANCE log-odds of LightGBM's `predict(..., pred_contrib=True)`, and base + sum of
contributions must equal the log-odds of the probability that same run serves, within TOLERANCE.
Run as served (the default `attribution_threshold`), the graph must attribute exactly the rows
the decision refuses (probability >= threshold in float64), no more and no fewer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
from lightgbm import LGBMClassifier

from contract.metadata import (
    ATTRIBUTED_ROWS_OUTPUT,
    ATTRIBUTION_THRESHOLD_INPUT,
    CONTRIBUTIONS_OUTPUT,
    INPUT_NAME,
    PROBABILITY_OUTPUT,
)

TOLERANCE = 1e-5  # log-odds; a wrong table or split is off by far more than rounding


class ExplanationError(RuntimeError):
    """The graph's attributions do not reproduce LightGBM's TreeSHAP values or the served score."""


@dataclass(frozen=True)
class ExplanationReport:
    rows: int
    max_abs_diff: float  # vs LightGBM pred_contrib, every feature and the base value
    mean_abs_diff: float
    max_additivity_diff: float  # |base + sum - logit(served probability)|
    tolerance: float
    selection_mismatches: int = 0  # rows attributed by default but accepted, or refused but not attributed

    @property
    def passed(self) -> bool:
        return (
            self.max_abs_diff <= self.tolerance
            and self.max_additivity_diff <= self.tolerance
            and self.selection_mismatches == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        return (
            f"reasons on {self.rows:,} rows: max |TreeSHAP - LightGBM pred_contrib| {self.max_abs_diff:.3g} log-odds "
            f"(mean {self.mean_abs_diff:.3g}), max |base + sum - served log-odds| {self.max_additivity_diff:.3g} "
            f"(limit {self.tolerance:g}), {self.selection_mismatches:,} rows attributed otherwise than refused"
        )


def log_odds(probability: np.ndarray) -> np.ndarray:
    p = np.asarray(probability, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def prove(
    session: ort.InferenceSession,
    base_value: float,
    model: LGBMClassifier,
    rows: np.ndarray,
    pipeline_features: np.ndarray,
    threshold: float,
    tolerance: float = TOLERANCE,
    batch_size: int = 10_000,
) -> ExplanationReport:
    """The graph's attributions on API-encoded `rows` vs LightGBM on the pipeline's features of the
    same rows (every row attributed), and the rows it attributes as served vs those `threshold` refuses."""
    max_diff = total_diff = max_additivity = 0.0
    n_features = mismatches = 0
    every = {ATTRIBUTION_THRESHOLD_INPUT: np.array(-np.inf, np.float32)}
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        probabilities, attributed, graph_contributions = session.run(
            [PROBABILITY_OUTPUT, ATTRIBUTED_ROWS_OUTPUT, CONTRIBUTIONS_OUTPUT], {INPUT_NAME: chunk, **every}
        )
        if not np.array_equal(attributed[0], np.arange(len(chunk))):
            raise ExplanationError("the graph does not attribute every row when asked to")
        contributions = graph_contributions.astype(np.float64)
        n_features = contributions.shape[1]
        expected = model.predict(pipeline_features[start : start + batch_size], pred_contrib=True)
        ours = np.column_stack([contributions, np.full(len(chunk), base_value)])
        diff = np.abs(ours - expected)
        max_diff = max(max_diff, float(diff.max()))
        total_diff += float(diff.sum())
        served = log_odds(probabilities[:, 1])
        max_additivity = max(max_additivity, float(np.abs(base_value + contributions.sum(axis=1) - served).max()))
        (as_served,) = session.run([ATTRIBUTED_ROWS_OUTPUT], {INPUT_NAME: chunk})
        refused = np.flatnonzero(probabilities[:, 1].astype(np.float64) >= threshold)
        mismatches += len(np.setxor1d(as_served[0], refused))
    return ExplanationReport(
        rows=len(rows),
        max_abs_diff=max_diff,
        mean_abs_diff=total_diff / max(1, rows.shape[0] * (n_features + 1)),
        max_additivity_diff=max_additivity,
        tolerance=tolerance,
        selection_mismatches=mismatches,
    )
