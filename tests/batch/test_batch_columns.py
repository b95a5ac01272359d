"""The column-wise screen and encoder agree with the API's request model and RowEncoder, row for row."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from batch.columns import BatchChecker, nan_where_null
from contract.encoding import RowEncoder
from contract.requests import RequestInvalid, RequestModels, build_request_models
from contract.spec import FeatureSpec
from training.synthetic import generate


@pytest.fixture(scope="module")
def requests(spec: FeatureSpec) -> RequestModels:
    return build_request_models(spec, max_batch_size=1000)


def api_verdict(requests: RequestModels, applicant: dict[str, Any]) -> tuple[list[Any] | None, dict[str, Any] | None]:
    """What the API does with one applicant: (problems, None) or (None, the validated fields)."""
    try:
        return None, requests.validate_applicant(applicant).__dict__
    except RequestInvalid as invalid:
        return invalid.problems, None


def jsonish(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def test_every_level_and_missing_values_encode_like_the_row_encoder(spec: FeatureSpec, requests: RequestModels) -> None:
    frame = generate(400, seed=3)
    # Every level of every categorical at least once, and every nullable field missing somewhere.
    for feature in spec.features:
        if feature.is_categorical:
            for offset, level in enumerate(feature.levels):
                frame.loc[offset, feature.name] = level
        if feature.nullable:
            frame.loc[300 + len(feature.name) % 50, feature.name] = None
    checked = BatchChecker(spec, requests).check(pa.RecordBatch.from_pandas(frame, preserve_index=False))

    applicants = [{name: jsonish(row[name]) for name in spec.names} for row in frame.to_dict("records")]
    validated = [api_verdict(requests, applicant) for applicant in applicants]
    assert all(problems is None for problems, _ in validated), [p for p, _ in validated if p][:3]
    assert checked.valid.all() and not checked.rejects
    expected = RowEncoder(spec).encode_many([fields for _, fields in validated if fields is not None])
    assert checked.rows.dtype == np.float32
    assert np.array_equal(checked.rows.view(np.uint32), expected.view(np.uint32))  # bit for bit, NaN included


def test_refused_rows_carry_the_request_models_problems(spec: FeatureSpec, requests: RequestModels) -> None:
    frame = generate(60, seed=5)
    frame["DAYS_BIRTH"] = frame["DAYS_BIRTH"].astype("float64")
    frame["AMT_CREDIT"] = frame["AMT_CREDIT"].astype("object")
    bad = {
        2: {"AMT_INCOME_TOTAL": 1.0},
        5: {"DAYS_BIRTH": -9000.25},
        9: {"CODE_GENDER": "Z", "CNT_CHILDREN": 50},
        13: {"AMT_CREDIT": "lots"},  # text where a number belongs (a CSV cell)
        17: {"AMT_ANNUITY": math.inf},
        21: {"NAME_CONTRACT_TYPE": None},
    }
    for row, values in bad.items():
        for name, value in values.items():
            frame.loc[row, name] = value
    frame["AMT_CREDIT"] = frame["AMT_CREDIT"].astype(str)  # the whole column as text, as CSV gives it
    checked = BatchChecker(spec, requests).check(pa.RecordBatch.from_pandas(frame, preserve_index=False))

    assert [index for index, _ in checked.rejects] == sorted(bad)
    assert checked.valid.sum() == len(frame) - len(bad)
    for index, problems in checked.rejects:
        applicant = {}
        for name in spec.names:
            value = jsonish(frame.loc[index, name])
            if name == "AMT_CREDIT" and name not in bad[index]:
                value = float(value)
            if spec[name].dtype == "int64" and isinstance(value, float) and value.is_integer():
                value = int(value)
            applicant[name] = value.item() if isinstance(value, np.generic) else value
        expected, _ = api_verdict(requests, applicant)
        assert problems == expected
        assert {p.field for p in problems} == set(bad[index])


@pytest.mark.parametrize("offset", [0, 3, 8, 13])
def test_a_float_column_with_nulls_reads_as_numpy_reads_it_bit_for_bit(offset: int) -> None:
    values = [1.5, None, -0.0, 0.0, math.inf, None, math.nan, -7.25, None, 3e300, 2.0, None, -1e-300, 4.0, None] * 7
    column = pa.array(values, pa.float64()).slice(offset, 61)  # a slice: its bitmap starts mid-byte
    numbers = nan_where_null(column)
    expected = column.to_numpy(zero_copy_only=False)
    assert numbers.dtype == np.float64
    assert numbers.tobytes() == expected.tobytes()  # -0.0 stays -0.0, every null is NumPy's NaN


def test_a_checker_reused_for_batches_of_one_size_checks_each_as_a_fresh_one(
    spec: FeatureSpec, requests: RequestModels
) -> None:
    """Its float64 matrix is kept from batch to batch: nothing of one batch may leak into the next."""
    first, second = (generate(300, seed=seed) for seed in (11, 12))
    second.loc[7, "AMT_INCOME_TOTAL"] = -1.0  # a reject in the second batch only
    reused = BatchChecker(spec, requests)
    reused.check(pa.RecordBatch.from_pandas(first, preserve_index=False))
    batch = pa.RecordBatch.from_pandas(second, preserve_index=False)
    again, fresh = reused.check(batch), BatchChecker(spec, requests).check(batch)
    assert np.array_equal(again.valid, fresh.valid) and not again.valid[7]
    assert again.rejects == fresh.rejects and [row for row, _ in again.rejects] == [7]
    assert again.rows.tobytes() == fresh.rows.tobytes()


@pytest.mark.parametrize("index_type", [pa.int8(), pa.int32()])
@pytest.mark.parametrize("offset", [0, 5])
def test_dictionary_columns_check_like_their_plain_text(
    spec: FeatureSpec, requests: RequestModels, index_type: pa.DataType, offset: int
) -> None:
    """Parquet read with `read_dictionary` hands the checker dictionary columns: same rows, rejects and bits."""
    frame = generate(64, seed=13)
    categorical = [f.name for f in spec.features if f.is_categorical]
    nullable = next(f.name for f in spec.features if f.is_categorical and f.nullable)
    frame.loc[[2, 9], categorical[0]] = "Q"  # unknown levels
    frame.loc[[4, 5, 30], nullable] = None  # missing values, under null indices
    whole = pa.RecordBatch.from_pandas(frame, preserve_index=False)
    columns = [
        pa.compute.dictionary_encode(column).cast(pa.dictionary(index_type, pa.string()))
        if name in categorical
        else column
        for name, column in zip(whole.schema.names, whole.columns, strict=True)
    ]
    # Sliced after encoding: the indices (and their validity bitmap) start `offset` values in.
    encoded = pa.RecordBatch.from_arrays(columns, names=whole.schema.names).slice(offset)
    plain = whole.slice(offset)
    assert encoded.column(nullable).indices.offset == offset and encoded.column(nullable).null_count >= 1
    ours, theirs = (BatchChecker(spec, requests).check(batch) for batch in (encoded, plain))
    assert np.array_equal(ours.valid, theirs.valid) and not ours.valid[9 - offset]  # the unknown level
    assert ours.rejects == theirs.rejects
    assert ours.rows.tobytes() == theirs.rows.tobytes()


def test_a_value_on_its_bound_passes_and_the_next_float_beyond_it_is_refused(
    spec: FeatureSpec, requests: RequestModels
) -> None:
    """The screen compares each field's extremes first: one value just past a bound must still be caught."""
    bounded = [f for f in spec.features if f.dtype == "float64" and f.minimum is not None and f.maximum is not None]
    low_field, high_field = bounded[0], bounded[-1]
    frame = generate(40, seed=17)
    frame.loc[3, low_field.name] = low_field.minimum
    frame.loc[4, high_field.name] = high_field.maximum
    frame.loc[11, low_field.name] = np.nextafter(low_field.minimum, -np.inf)
    frame.loc[12, high_field.name] = np.nextafter(high_field.maximum, np.inf)
    checked = BatchChecker(spec, requests).check(pa.RecordBatch.from_pandas(frame, preserve_index=False))
    assert [index for index, _ in checked.rejects] == [11, 12]
    assert [{p.field for p in problems} for _, problems in checked.rejects] == [{low_field.name}, {high_field.name}]
    assert checked.valid[3] and checked.valid[4]


def test_a_nan_in_a_required_float_column_without_nulls_is_a_missing_value(
    spec: FeatureSpec, requests: RequestModels
) -> None:
    required = next(f.name for f in spec.features if f.dtype == "float64" and not f.nullable)
    frame = generate(30, seed=19)
    frame.loc[6, required] = math.nan
    whole = pa.RecordBatch.from_pandas(frame, preserve_index=False)  # (which makes NaN a null)
    index = whole.schema.get_field_index(required)
    batch = whole.set_column(index, required, pa.array(frame[required].to_numpy(), pa.float64()))
    assert batch.column(required).null_count == 0  # a NaN value, not a null cell
    checked = BatchChecker(spec, requests).check(batch)
    applicant = {name: jsonish(frame.loc[6, name]) for name in spec.names}
    applicant = {name: value.item() if isinstance(value, np.generic) else value for name, value in applicant.items()}
    expected, _ = api_verdict(requests, applicant)
    assert checked.rejects == [(6, expected)] and {p.field for p in expected or []} == {required}


def test_a_checker_reused_across_dictionaries_looks_each_one_up(spec: FeatureSpec, requests: RequestModels) -> None:
    """A dictionary column's lookup is kept between batches: a batch with another dictionary gets its own."""
    categorical = [f.name for f in spec.features if f.is_categorical]
    first, second = generate(50, seed=23), generate(50, seed=29)
    second.loc[[1, 8], categorical[0]] = "Q"  # an unknown level: only the second batch's dictionary holds it

    def encoded(frame: Any) -> pa.RecordBatch:
        whole = pa.RecordBatch.from_pandas(frame, preserve_index=False)
        columns = [
            pa.compute.dictionary_encode(column) if name in categorical else column
            for name, column in zip(whole.schema.names, whole.columns, strict=True)
        ]
        return pa.RecordBatch.from_arrays(columns, names=whole.schema.names)

    reused = BatchChecker(spec, requests)
    for frame in (first, second, first):
        batch = encoded(frame)
        again = reused.check(batch)
        fresh = BatchChecker(spec, requests).check(pa.RecordBatch.from_pandas(frame, preserve_index=False))
        assert np.array_equal(again.valid, fresh.valid) and again.rejects == fresh.rejects
        assert again.rows.tobytes() == fresh.rows.tobytes()
    assert [row for row, _ in reused.check(encoded(second)).rejects] == [1, 8]
