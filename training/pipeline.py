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

from contract.features import ANOMALY_FLAG, RATIOS, Engineering
from contract.spec import FeatureSpec

__all__ = ["ANOMALY_FLAG", "RATIOS", "FeatureEngineer", "SpecEncoder", "build_pipeline", "build_preprocessing"]

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
    """DataFrame of raw fields -> float32 matrix of the spec's model inputs (categoricals as level codes).

    Protected fields are not among `columns`: they never reach the model.

    Parameters are plain lists and dicts so the fitted pipeline serialises with skops.
    """

    def __init__(self, columns: list[str], levels: dict[str, list[str]]) -> None:
        self.columns = columns
        self.levels = levels

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> SpecEncoder:
        inputs = spec.model_inputs
        return cls([f.name for f in inputs], {f.name: list(f.levels) for f in inputs if f.is_categorical})

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
    """Adds the domain features of `contract.features.Engineering` to the encoded matrix (float32).

    `columns` are the model inputs, in order; the arithmetic lives in `Engineering` so the
    serve-time explainer computes the very values the trees were trained on.
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    @property
    def engineering(self) -> Engineering:
        return Engineering.for_inputs(self.columns)

    def fit(self, X: np.ndarray, y: Any = None) -> FeatureEngineer:
        self.n_features_in_ = len(self.columns)
        return self

    @property
    def employed_index(self) -> int:
        return self.engineering.employed_index

    def ratio_indices(self) -> list[tuple[int, int]]:
        return self.engineering.ratio_indices()

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.engineering.transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.engineering.feature_names, dtype=object)


def build_preprocessing(spec: FeatureSpec) -> Pipeline:
    return Pipeline([("encode", SpecEncoder.from_spec(spec)), ("engineer", FeatureEngineer(spec.input_names))])


def build_pipeline(preprocessing: Pipeline, model: LGBMClassifier) -> Pipeline:
    """The full pipeline, from already fitted steps (the model is fitted on the transformed data)."""
    return Pipeline([*preprocessing.steps, ("model", model)])
