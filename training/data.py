"""Loading application data: the real Home Credit file, or the synthetic generator.

`load_application_csv` checks a real `application_train.csv` against the schema the project
carries and fails with a message naming every missing or mistyped column.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

from training.schema import ID_COLUMN, TARGET_COLUMN, load_schema


class DataError(ValueError):
    """The data does not match the Home Credit application schema."""


def validate_application_frame(frame: pd.DataFrame, require_target: bool = True) -> None:
    """Raise DataError naming every missing, mistyped or off-schema column."""
    schema = load_schema()["columns"]
    required = [ID_COLUMN, *([TARGET_COLUMN] if require_target else []), *schema]
    problems = [f"missing column {name}" for name in required if name not in frame.columns]
    for name, col in schema.items():
        if name not in frame.columns:
            continue
        values = frame[name]
        if col["dtype"] == "string":
            if pd.api.types.is_numeric_dtype(values) and values.notna().any():
                problems.append(f"{name} should hold text, found {values.dtype}")
                continue
            unknown = sorted(set(values.dropna().astype(str)) - set(col["levels"]))
            if unknown:
                problems.append(f"{name} has unknown levels {unknown[:5]}")
        elif not pd.api.types.is_numeric_dtype(values):
            problems.append(f"{name} should be numeric ({col['dtype']}), found {values.dtype}")
    if require_target and TARGET_COLUMN in frame.columns:
        if not frame[TARGET_COLUMN].isin([0, 1]).all():
            problems.append(f"{TARGET_COLUMN} must be 0 or 1 on every row")
    if problems:
        raise DataError("application data does not match the Home Credit schema: " + "; ".join(problems))


def load_application_csv(path: str | Path) -> pd.DataFrame:
    """Read and check a real-format application CSV (e.g. Kaggle's application_train.csv)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    schema = load_schema()["columns"]
    string_columns = {name: "string" for name, col in schema.items() if col["dtype"] == "string"}
    try:
        frame = pd.read_csv(path, dtype=string_columns, low_memory=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path} is not a readable application CSV: {exc}") from None
    validate_application_frame(frame)
    for name in string_columns:  # plain objects with None for missing, like the generator
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Stratified 70/15/15 split: train, validation (early stopping and threshold), test."""
    train, rest = train_test_split(frame, test_size=0.3, stratify=frame[TARGET_COLUMN], random_state=seed)
    valid, test = train_test_split(rest, test_size=0.5, stratify=rest[TARGET_COLUMN], random_state=seed)
    return train, valid, test
