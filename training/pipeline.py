"""The scikit-learn pipeline: raw application table -> encoded matrix -> engineered features -> LightGBM.

Every step after `encode` works on float32 matrices and has an ONNX converter (see
`export/convert.py`), so the exported graph reproduces it exactly. `encode` is the training
twin of the API's `contract.encoding.RowEncoder`: both map a categorical value to the index
of its level in the feature spec and a missing value to NaN; the export proves they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from contract.spec import FeatureSpec
from training.schema import DAYS_EMPLOYED_ANOMALY

# Ratios added by FeatureEngineer: name -> (numerator, denominator).
RATIOS: dict[str, tuple[str, str]] = {
    "CREDIT_INCOME_RATIO": ("AMT_CREDIT", "AMT_INCOME_TOTAL"),
    "ANNUITY_INCOME_RATIO": ("AMT_ANNUITY", "AMT_INCOME_TOTAL"),
    "ANNUITY_CREDIT_RATIO": ("AMT_ANNUITY", "AMT_CREDIT"),
    "GOODS_CREDIT_RATIO": ("AMT_GOODS_PRICE", "AMT_CREDIT"),
    "EMPLOYED_AGE_RATIO": ("DAYS_EMPLOYED", "DAYS_BIRTH"),
}
ANOMALY_FLAG = "DAYS_EMPLOYED_ANOM"

DEFAULT_LGBM_PARAMS: dict[str, Any] = {
    "n_estimators": 2000,  # an upper bound: early stopping picks the number of trees
    # Many shallow trees: same test AUC and business cost as 24 leaves at rate 0.05, in a
    # model 5x smaller (benchmarks/RESULTS.md, "model weight").
    "learning_rate": 0.1,
    "num_leaves": 7,
    "min_child_samples": 100,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.7,
    "reg_lambda": 1.0,
    "n_jobs": 2,
    "verbose": -1,
}


class SpecEncoder(TransformerMixin, BaseEstimator):
    """DataFrame of raw fields -> float32 matrix in spec order (categoricals as level codes).

    Parameters are plain lists and dicts so the fitted pipeline serialises with skops.
    """

    def __init__(self, columns: list[str], levels: dict[str, list[str]]) -> None:
        self.columns = columns
        self.levels = levels

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> SpecEncoder:
        return cls(spec.names, {f.name: list(f.levels) for f in spec.features if f.is_categorical})

    def fit(self, X: pd.DataFrame, y: Any = None) -> SpecEncoder:
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"input lacks {len(missing)} feature columns, e.g. {missing[:5]}")
        self.n_features_in_ = len(self.columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(X), len(self.columns)), dtype=np.float32)
        for j, name in enumerate(self.columns):
            column = X[name]
            if name in self.levels:
                codes = pd.Categorical(column, categories=self.levels[name]).codes.astype(np.float32)
                codes[codes < 0] = np.nan  # missing or unknown level
                out[:, j] = codes
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float32, na_value=np.nan)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.columns, dtype=object)


class FeatureEngineer(TransformerMixin, BaseEstimator):
    """Adds domain features to the encoded matrix, in float32 so ONNX computes the same bits.

    DAYS_EMPLOYED = 365243 (the "not employed" placeholder) becomes NaN plus a flag, and
    the ratios in RATIOS are appended (computed after that replacement).
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fit(self, X: np.ndarray, y: Any = None) -> FeatureEngineer:
        self.n_features_in_ = len(self.columns)
        return self

    @property
    def employed_index(self) -> int:
        return self.columns.index("DAYS_EMPLOYED")

    def ratio_indices(self) -> list[tuple[int, int]]:
        return [(self.columns.index(a), self.columns.index(b)) for a, b in RATIOS.values()]

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        e = self.employed_index
        anomaly = X[:, e] == np.float32(DAYS_EMPLOYED_ANOMALY)
        cleaned = X.copy()
        cleaned[anomaly, e] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios = [cleaned[:, a] / cleaned[:, b] for a, b in self.ratio_indices()]
        return np.column_stack([cleaned, anomaly.astype(np.float32), *ratios]).astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([*self.columns, ANOMALY_FLAG, *RATIOS], dtype=object)


def build_preprocessing(spec: FeatureSpec) -> Pipeline:
    return Pipeline([("encode", SpecEncoder.from_spec(spec)), ("engineer", FeatureEngineer(spec.names))])


def build_pipeline(preprocessing: Pipeline, model: LGBMClassifier) -> Pipeline:
    """The full pipeline, from already fitted steps (the model is fitted on the transformed data)."""
    return Pipeline([*preprocessing.steps, ("model", model)])
