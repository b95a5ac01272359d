"""The engineered features: model inputs -> the matrix the trees read, in float32.

One definition for training (`training.pipeline.FeatureEngineer` calls `Engineering.transform`),
for export (the ONNX graph mirrors it op by op and the parity proof checks it) and for the
serve-time explainer, which must see exactly the values the trees compared. NumPy only.

DAYS_EMPLOYED = 365243 (the "not employed" placeholder) becomes NaN plus a flag, then each
ratio numerator / denominator is appended (computed after that replacement).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

DAYS_EMPLOYED = "DAYS_EMPLOYED"
DAYS_EMPLOYED_ANOMALY = 365243
ANOMALY_FLAG = "DAYS_EMPLOYED_ANOM"
_ANOMALY32, _NAN32 = np.float32(DAYS_EMPLOYED_ANOMALY), np.float32(np.nan)
# float32 / float32 element by element, x / 0 -> inf and 0 / 0 -> NaN without a warning; the
# decorator form of errstate is thread-safe and cheaper per call than the `with` form.
_divide_quietly = np.errstate(divide="ignore", invalid="ignore")(np.divide)

# Ratios: name -> (numerator, denominator), raw field names.
RATIOS: dict[str, tuple[str, str]] = {
    "CREDIT_INCOME_RATIO": ("AMT_CREDIT", "AMT_INCOME_TOTAL"),
    "ANNUITY_INCOME_RATIO": ("AMT_ANNUITY", "AMT_INCOME_TOTAL"),
    "ANNUITY_CREDIT_RATIO": ("AMT_ANNUITY", "AMT_CREDIT"),
    "GOODS_CREDIT_RATIO": ("AMT_GOODS_PRICE", "AMT_CREDIT"),
    "EMPLOYED_AGE_RATIO": ("DAYS_EMPLOYED", "DAYS_BIRTH"),
}


@dataclass(frozen=True)
class Engineering:
    """How the model features are built from the model inputs (column names in input order).

    A ratio whose numerator or denominator is not an input (a protected field) is left out.
    """

    input_names: tuple[str, ...]
    ratios: Mapping[str, tuple[str, str]] = field(default_factory=lambda: dict(RATIOS))

    def __post_init__(self) -> None:
        if DAYS_EMPLOYED not in self.input_names:
            raise ValueError(f"{DAYS_EMPLOYED} must be a model input: the employment features are built from it")
        kept = {k: (a, b) for k, (a, b) in self.ratios.items() if a in self.input_names and b in self.input_names}
        object.__setattr__(self, "ratios", kept)

    @cached_property
    def employed_index(self) -> int:
        return self.input_names.index(DAYS_EMPLOYED)

    def ratio_indices(self) -> list[tuple[int, int]]:
        return [(self.input_names.index(a), self.input_names.index(b)) for a, b in self.ratios.values()]

    @cached_property
    def _ratio_columns(self) -> tuple[np.ndarray, np.ndarray]:
        """(numerator columns, denominator columns) of the ratios, for one gather each."""
        pairs = np.array(self.ratio_indices(), dtype=np.intp).reshape(-1, 2)
        return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

    @cached_property
    def feature_names(self) -> list[str]:
        """The model features, in the order the trees index them."""
        return [*self.input_names, ANOMALY_FLAG, *self.ratios]

    def sources(self, feature: str) -> tuple[str, ...]:
        """The raw fields a model feature is computed from."""
        if feature == ANOMALY_FLAG:
            return (DAYS_EMPLOYED,)
        if feature in self.ratios:
            return self.ratios[feature]
        return (feature,)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        """(n, n_inputs) float32 -> (n, n_features) float32, the arithmetic the ONNX graph repeats."""
        rows = np.asarray(rows, dtype=np.float32)
        n, width = rows.shape
        e = self.employed_index
        out = np.empty((n, len(self.feature_names)), dtype=np.float32)
        out[:, :width] = rows
        employed = out[:, e]  # a view: set in place
        anomaly = employed == _ANOMALY32
        out[:, width] = anomaly
        employed[anomaly] = _NAN32
        numerators, denominators = self._ratio_columns
        _divide_quietly(out.take(numerators, axis=1), out.take(denominators, axis=1), out=out[:, width + 1 :])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"input_names": list(self.input_names), "ratios": {k: list(v) for k, v in self.ratios.items()}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Engineering:
        ratios: dict[str, tuple[str, str]] = {k: (str(v[0]), str(v[1])) for k, v in raw["ratios"].items()}
        return cls(tuple(raw["input_names"]), ratios)

    @classmethod
    def for_inputs(cls, input_names: Sequence[str]) -> Engineering:
        return cls(tuple(input_names))
