"""Proof that the ONNX graph scores like the MLflow model before anything is written.

The reference scores come from the MLflow pyfunc model on a DataFrame; the ONNX scores come
from the serving path itself (`RowEncoder` on plain dicts, then onnxruntime), so the check
covers the API's encoding as well as the conversion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from contract.encoding import RowEncoder
from contract.metadata import INPUT_NAME, PROBABILITY_OUTPUT
from contract.spec import FeatureSpec

# Largest accepted |p_onnx - p_mlflow|. ONNX sums the trees in float32, which moves a
# probability by ~1e-7; anything near 1e-5 means a wrong split, not rounding.
TOLERANCE = 1e-5


class ParityError(RuntimeError):
    """The ONNX graph does not score like the MLflow model."""


@dataclass(frozen=True)
class ParityReport:
    rows: int
    max_abs_diff: float
    mean_abs_diff: float
    tolerance: float
    threshold: float
    decision_flips: int
    flips_outside_band: int  # flips whose reference score is further than `tolerance` from the threshold

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance and self.flips_outside_band == 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    def describe(self) -> str:
        return (
            f"parity on {self.rows:,} rows: max |diff| {self.max_abs_diff:.3g} (limit {self.tolerance:g}), "
            f"mean {self.mean_abs_diff:.3g}; decision flips at threshold {self.threshold:.4f}: "
            f"{self.decision_flips} ({self.flips_outside_band} outside the ±{self.tolerance:g} band)"
        )


def records(frame: pd.DataFrame, spec: FeatureSpec) -> list[dict[str, Any]]:
    """Rows as the API sees them after validation: plain values, None for missing."""
    subset = frame[spec.names].astype(object)
    return subset.where(subset.notna(), None).to_dict("records")


def onnx_probabilities(
    session: ort.InferenceSession, spec: FeatureSpec, rows: list[dict[str, Any]], batch_size: int = 20_000
) -> np.ndarray:
    encoder = RowEncoder(spec)
    chunks = []
    for start in range(0, len(rows), batch_size):
        matrix = encoder.encode_many(rows[start : start + batch_size])
        chunks.append(session.run([PROBABILITY_OUTPUT], {INPUT_NAME: matrix})[0][:, 1])
    return np.concatenate(chunks).astype(np.float64)


def compare(
    reference: np.ndarray, candidate: np.ndarray, threshold: float, tolerance: float = TOLERANCE
) -> ParityReport:
    """Score differences and decision flips between two probability vectors."""
    reference = np.asarray(reference, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    diff = np.abs(reference - candidate)
    flips = (reference >= threshold) != (candidate >= threshold)
    # A flip is only explainable by rounding when the reference sits within the tolerance
    # of the threshold: if |diff| <= tolerance, no other row can cross it.
    outside = flips & (np.abs(reference - threshold) > tolerance)
    return ParityReport(
        rows=len(reference),
        max_abs_diff=float(diff.max()) if len(diff) else 0.0,
        mean_abs_diff=float(diff.mean()) if len(diff) else 0.0,
        tolerance=tolerance,
        threshold=threshold,
        decision_flips=int(flips.sum()),
        flips_outside_band=int(outside.sum()),
    )
