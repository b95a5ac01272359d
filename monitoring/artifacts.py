"""What monitoring reads from the model side: the feature spec and the reference sample.

The spec comes from the ONNX artifact's metadata (the contract the served model was trained
on); without an artifact it falls back to the training schema, which builds the same spec.
Both the reference sample and the production log go through `typed_frame`, so the two sides
of every drift comparison carry identical dtypes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from contract.names import DEFAULT_MODEL_PATH, DEFAULT_REFERENCE_PATH
from contract.spec import FeatureSpec

DEFAULT_MODEL = DEFAULT_MODEL_PATH
DEFAULT_REFERENCE = DEFAULT_REFERENCE_PATH
SPEC_METADATA_KEY = "feature_spec"
PROBABILITY = "probability"
PREDICTION = "prediction"


class InvalidReferenceError(ValueError):
    """The reference sample lacks feature columns."""


def load_feature_spec(model_path: Path | str | None = DEFAULT_MODEL) -> FeatureSpec:
    """The feature spec embedded in the ONNX artifact, or the training schema's when there is none."""
    if model_path is not None and Path(model_path).is_file():
        import onnx  # heavy import, only when an artifact is there

        # load_external_data=False: only the metadata is needed, not the weights.
        model = onnx.load(str(model_path), load_external_data=False)
        props = {p.key: p.value for p in model.metadata_props}
        if SPEC_METADATA_KEY in props:
            return FeatureSpec.from_json(props[SPEC_METADATA_KEY])
    from training.schema import build_feature_spec

    return build_feature_spec()


def typed_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The spec's columns, in spec order: numbers as float64, categories as str (missing: NaN).

    Numbers are all float64 because a nullable integer column cannot be int64 with NaN, and
    Evidently treats float and int the same. Columns absent from `frame` come back all-missing.
    Other columns of `frame` (probability, timestamps, ...) are kept after the features.
    """
    out: dict[str, pd.Series] = {}
    index = frame.index
    for feature in spec.features:
        column = frame[feature.name] if feature.name in frame else pd.Series(np.nan, index=index)
        if feature.is_categorical:
            present = column.notna()
            values = pd.Series(np.nan, index=index, dtype=object)
            values[present] = column[present].astype(str)
            out[feature.name] = values
        else:
            out[feature.name] = pd.to_numeric(column, errors="coerce").astype("float64")
    extra = [c for c in frame.columns if c not in out]
    return pd.concat([pd.DataFrame(out, index=index), frame[extra]], axis=1)


def load_reference(path: Path | str, spec: FeatureSpec) -> pd.DataFrame:
    """The reference sample (parquet or CSV), typed by the spec; keeps probability/prediction if present."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"reference sample not found: {path}")
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    missing = [name for name in spec.names if name not in frame]
    if missing:
        raise InvalidReferenceError(f"reference sample {path} lacks {len(missing)} feature columns, e.g. {missing[:3]}")
    typed = typed_frame(frame, spec)
    for column in (PROBABILITY, PREDICTION):
        if column in typed:
            typed[column] = pd.to_numeric(typed[column], errors="coerce").astype("float64")
    return typed
