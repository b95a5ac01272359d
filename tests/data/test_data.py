"""Data tests: the generator reproduces the real schema; the loader accepts real files and rejects bad ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contract.spec import FeatureSpec
from training.data import DataError, load_application_csv
from training.schema import DAYS_EMPLOYED_ANOMALY, ID_COLUMN, TARGET_COLUMN, build_feature_spec, load_schema
from training.synthetic import TRUE_PROBABILITY_COLUMN, generate

SCHEMA = load_schema()["columns"]


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return generate(60_000, seed=7)


def test_generator_has_the_real_columns_in_order(sample: pd.DataFrame) -> None:
    assert list(sample.columns) == [ID_COLUMN, TARGET_COLUMN, *SCHEMA, TRUE_PROBABILITY_COLUMN]
    assert len(SCHEMA) == 120
    assert sum(col["dtype"] == "string" for col in SCHEMA.values()) == 16


def test_generator_dtypes_levels_and_ranges(sample: pd.DataFrame) -> None:
    for name, col in SCHEMA.items():
        values = sample[name].dropna()
        if col["dtype"] == "string":
            assert set(values) <= set(col["levels"]), name
        else:
            expected = np.int64 if col["dtype"] == "int64" else np.float64
            assert sample[name].dtype == expected, name
            assert values.min() >= col["min"] and values.max() <= col["max"], name


def test_generator_missing_rates_match_the_real_file(sample: pd.DataFrame) -> None:
    for name, col in SCHEMA.items():
        assert sample[name].isna().mean() == pytest.approx(col["missing_rate"], abs=0.03), name


def test_generator_realistic_structure(sample: pd.DataFrame) -> None:
    anomaly = sample["DAYS_EMPLOYED"] == DAYS_EMPLOYED_ANOMALY
    assert 0.15 < anomaly.mean() < 0.21  # ~18% pensioners in the real file
    assert (sample.loc[anomaly, "ORGANIZATION_TYPE"] == "XNA").all()
    assert (sample.loc[anomaly, "FLAG_EMP_PHONE"] == 0).all()
    assert set(sample.loc[anomaly, "NAME_INCOME_TYPE"]) <= {"Pensioner", "Unemployed"}
    assert sample.loc[sample["FLAG_OWN_CAR"] == "N", "OWN_CAR_AGE"].isna().all()
    assert sample["ORGANIZATION_TYPE"].nunique() > 50
    assert sample["DAYS_BIRTH"].between(-25_229, -7_489).all()
    assert 0.07 < sample[TARGET_COLUMN].mean() < 0.095
    # Pensioners default less, as in the real file (5.4% against 8.7%).
    assert sample.loc[anomaly, TARGET_COLUMN].mean() < sample.loc[~anomaly, TARGET_COLUMN].mean()


def test_generator_is_deterministic_by_seed() -> None:
    pd.testing.assert_frame_equal(generate(500, seed=3), generate(500, seed=3))
    assert not generate(500, seed=3).equals(generate(500, seed=4))


def test_feature_spec_covers_every_column_with_its_contract() -> None:
    spec = build_feature_spec()
    assert spec.names == list(SCHEMA)
    gender = spec["CODE_GENDER"]
    assert gender.is_categorical and "XNA" in gender.levels and not gender.nullable
    ext1 = spec["EXT_SOURCE_1"]
    assert ext1.nullable and ext1.minimum is not None and ext1.maximum is not None and ext1.maximum <= 1
    assert all(f.description for f in spec.features)
    assert FeatureSpec.from_json(spec.to_json()) == spec


def _real_format_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.drop(columns=[TRUE_PROBABILITY_COLUMN]).to_csv(path, index=False)
    return path


def test_loader_accepts_a_real_format_file(tmp_path: Path) -> None:
    frame = generate(200, seed=11)
    frame.loc[0, "CODE_GENDER"] = "XNA"
    frame.loc[1, "DAYS_EMPLOYED"] = DAYS_EMPLOYED_ANOMALY
    loaded = load_application_csv(_real_format_csv(tmp_path / "application_train.csv", frame))
    assert len(loaded) == 200
    assert loaded.loc[0, "CODE_GENDER"] == "XNA"
    assert loaded.loc[1, "DAYS_EMPLOYED"] == DAYS_EMPLOYED_ANOMALY
    assert loaded["OCCUPATION_TYPE"].isna().any()  # missing text stays missing, not "nan"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["EXT_SOURCE_2"]), "missing column EXT_SOURCE_2"),
        (lambda f: f.assign(AMT_CREDIT="a lot"), "AMT_CREDIT should be numeric"),
        (lambda f: f.assign(CODE_GENDER="Z"), "CODE_GENDER has unknown levels ['Z']"),
        (lambda f: f.assign(TARGET=2), "TARGET must be 0 or 1"),
    ],
)
def test_loader_rejects_malformed_files(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    path = _real_format_csv(tmp_path / "bad.csv", mutate(generate(50, seed=5)))
    with pytest.raises(DataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_application_csv(path)


def test_loader_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_application_csv(tmp_path / "nowhere.csv")
