"""The row encoder: raw applicant fields -> float32 rows in spec order, as training encodes them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from contract.encoding import RowEncoder, UnknownLevelError
from contract.spec import Feature, FeatureSpec
from training.pipeline import SpecEncoder

SPEC = FeatureSpec(
    (
        Feature("AMT_INCOME_TOTAL", "numeric", "float64", False, "Income", 100000.0, 0.0, 1e9),
        Feature("NAME_CONTRACT_TYPE", "categorical", "string", False, "Contract", "Cash loans",
                levels=("Cash loans", "Revolving loans")),
        Feature("CNT_CHILDREN", "numeric", "int64", True, "Children", 0, 0, 20),
        Feature("NAME_TYPE_SUITE", "categorical", "string", True, "Suite", "Family",
                levels=("Children", "Family", "Unaccompanied")),
    )
)  # fmt: skip


def test_columns_follow_the_spec_and_levels_become_their_index() -> None:
    rows = RowEncoder(SPEC).encode_many(
        [
            {"AMT_INCOME_TOTAL": 1.5, "NAME_CONTRACT_TYPE": "Revolving loans", "CNT_CHILDREN": 2,
             "NAME_TYPE_SUITE": "Unaccompanied"},
            {"NAME_TYPE_SUITE": "Children", "CNT_CHILDREN": 0, "NAME_CONTRACT_TYPE": "Cash loans",
             "AMT_INCOME_TOTAL": 3.0},
        ]
    )  # fmt: skip
    assert rows.dtype == np.float32 and rows.shape == (2, 4)
    assert rows.tolist() == [[1.5, 1.0, 2.0, 2.0], [3.0, 0.0, 0.0, 0.0]]


def test_absent_and_null_fields_are_both_nan() -> None:
    encoder = RowEncoder(SPEC)
    absent = encoder.encode_one({"AMT_INCOME_TOTAL": 1.0, "NAME_CONTRACT_TYPE": "Cash loans"})
    null = encoder.encode_one(
        {"AMT_INCOME_TOTAL": 1.0, "NAME_CONTRACT_TYPE": "Cash loans", "CNT_CHILDREN": None, "NAME_TYPE_SUITE": None}
    )
    assert np.array_equal(absent, null, equal_nan=True)
    assert [math.isnan(v) for v in absent[0]] == [False, False, True, True]


@pytest.mark.parametrize("level", ["Spaceship", ["Family"]])
def test_an_unknown_level_is_a_field_problem_not_a_crash(level: Any) -> None:
    with pytest.raises(UnknownLevelError) as caught:
        RowEncoder(SPEC).encode_one({"AMT_INCOME_TOTAL": 1.0, "NAME_CONTRACT_TYPE": level})
    (problem,) = caught.value.problems
    assert problem.field == "NAME_CONTRACT_TYPE" and "2 levels" in problem.problem


def test_float32_rounding_is_the_nearest_float32() -> None:
    row = RowEncoder(SPEC).encode_one({"AMT_INCOME_TOTAL": 0.1, "NAME_CONTRACT_TYPE": "Cash loans"})
    assert row[0, 0] == np.float32(0.1)


def test_the_encoder_equals_its_training_twin(spec: FeatureSpec, example: dict[str, Any]) -> None:
    """The API's encoder and the training pipeline's first step give the same rows, bit for bit."""
    rng = np.random.default_rng(0)
    applicants = []
    for i in range(50):
        applicant = dict(example)
        for feature in spec.features:
            if feature.nullable and rng.random() < 0.2:
                applicant[feature.name] = None
            elif feature.is_categorical:
                applicant[feature.name] = feature.levels[i % len(feature.levels)]
        applicants.append(applicant)
    served = RowEncoder(spec).encode_many(applicants)
    trained = SpecEncoder.from_spec(spec).fit(pd.DataFrame(applicants)).transform(pd.DataFrame(applicants))
    assert np.array_equal(served, trained, equal_nan=True)
