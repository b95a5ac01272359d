"""One Arrow record batch of applications -> the model's float32 rows, and the rows refused.

The API validates each applicant with the request models of `contract.requests` and encodes
it with `contract.encoding.RowEncoder`. Doing that row by row would cost the batch job most of
its time, so this module applies the same rules column by column (NumPy / Arrow compute):

- a screen flags every row that breaks a rule of the spec (missing required value, text or
  other non-number in a numeric field, non-finite or out-of-range number, a fraction in an
  integer field, an unknown level);
- each flagged row is then validated by the API's own request model, so a reject carries
  exactly the field/problem messages of the API's 422 (and a row the model accepts after all
  is scored, encoded by `RowEncoder`);
- the rows that pass are encoded column by column into the same float32 values `RowEncoder`
  produces (tests/batch/test_columns.py proves both agree, row for row and bit for bit).

File formats have no JSON types, so two readings are fixed here: a null cell (or NaN, which
pandas writes for missing floats) is a missing value, like JSON null; an integral float in an
integer field is that integer (Parquet and CSV writers store nullable integer columns as
floats). CSV cells arrive as text and are read as numbers where the field is numeric.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.encoding import RowEncoder
from contract.requests import FieldProblem, RequestInvalid, RequestModels
from contract.spec import Feature, FeatureSpec


@dataclass(frozen=True)
class CheckedBatch:
    """The outcome for one batch: which rows are scored, their model rows, the rejects."""

    valid: np.ndarray
    """Boolean mask over the batch's rows: True = scored."""
    rows: np.ndarray
    """float32 (valid.sum(), n_features) model input, in the batch's order."""
    rejects: list[tuple[int, list[FieldProblem]]]
    """(index in the batch, the API's problems) for every refused row, in order."""


@dataclass
class _Column:
    """One feature's values read from a batch, and the rows that break the spec's rules."""

    encoded: np.ndarray  # float64: the number, the level code, or NaN when missing
    flagged: np.ndarray  # bool: the row breaks a rule for this field
    raw: list[Any] | None = None  # Python values as the file holds them, read only for flagged rows
    unparsed: np.ndarray | None = None  # bool: text that is not a number (CSV)


class BatchChecker:
    """Validates and encodes Arrow batches for one artifact's feature spec."""

    def __init__(self, spec: FeatureSpec, requests: RequestModels) -> None:
        self._spec = spec
        self._requests = requests
        self._encoder = RowEncoder(spec)
        self._levels = {f.name: pa.array(f.levels, pa.string()) for f in spec.features if f.is_categorical}
        # Every field is validated (protected ones too, as the API does); the model reads its inputs only.
        self._input_column = {name: index for index, name in enumerate(spec.input_names)}

    @property
    def names(self) -> list[str]:
        return self._spec.names

    def check(self, batch: pa.RecordBatch) -> CheckedBatch:
        n = batch.num_rows
        matrix = np.empty((n, len(self._input_column)), dtype=np.float32)
        flagged = np.zeros(n, dtype=bool)
        columns: dict[str, _Column] = {}
        for feature in self._spec.features:
            column = self._read(feature, batch.column(feature.name))
            columns[feature.name] = column
            index = self._input_column.get(feature.name)
            if index is not None:
                matrix[:, index] = column.encoded  # float64 -> float32, as NumPy does for RowEncoder
            flagged |= column.flagged
        valid = ~flagged
        rejects: list[tuple[int, list[FieldProblem]]] = []
        rescued: list[tuple[int, np.ndarray]] = []
        for row in np.flatnonzero(flagged).tolist():
            applicant = {name: _value(self._spec[name], column, row, batch) for name, column in columns.items()}
            try:
                model = self._requests.validate_applicant(applicant)
            except RequestInvalid as invalid:
                rejects.append((row, invalid.problems))
            else:  # the screen was stricter than the request model: the model has the last word
                valid[row] = True
                rescued.append((row, self._encoder.encode_one(model.__dict__)[0]))
        for row, encoded in rescued:
            matrix[row] = encoded
        return CheckedBatch(valid=valid, rows=matrix[valid], rejects=rejects)

    def _read(self, feature: Feature, column: pa.Array | pa.ChunkedArray) -> _Column:
        if feature.is_categorical:
            return self._read_categorical(feature, column)
        return _read_numeric(feature, column)

    def _read_categorical(self, feature: Feature, column: pa.Array | pa.ChunkedArray) -> _Column:
        missing = column.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return _Column(np.full(len(column), np.nan), ~missing | (missing & (not feature.nullable)))
        codes = pc.index_in(column, value_set=self._levels[feature.name])
        unknown = codes.is_null().to_numpy(zero_copy_only=False) & ~missing
        encoded = codes.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null -> NaN
        return _Column(encoded, unknown | (missing & (not feature.nullable)))


def _read_numeric(feature: Feature, column: pa.Array | pa.ChunkedArray) -> _Column:
    kind = column.type
    unparsed = None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        numbers, unparsed = _parse_numbers(column)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    else:  # booleans, dates, ...: never a number for the request model either
        missing = column.is_null().to_numpy(zero_copy_only=False)
        return _Column(np.full(len(column), np.nan), ~missing | (missing & (not feature.nullable)))
    missing = np.isnan(numbers)
    if unparsed is not None:
        missing &= ~unparsed
    with np.errstate(invalid="ignore"):
        broken = np.isinf(numbers)
        if feature.minimum is not None:
            broken |= numbers < _bound(feature, feature.minimum)
        if feature.maximum is not None:
            broken |= numbers > _bound(feature, feature.maximum)
        if feature.dtype == "int64":
            broken |= np.isfinite(numbers) & (numbers != np.trunc(numbers))
    if unparsed is not None:
        broken |= unparsed
    flagged = broken | (missing & (not feature.nullable))
    return _Column(np.where(missing, np.nan, numbers), flagged, unparsed=unparsed)


def _parse_numbers(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Text cells -> float64 (null -> NaN), and which cells are not numbers at all."""
    try:
        numbers = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return numbers, np.zeros(len(numbers), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # some cell is not a number: find which
        values = column.to_pylist()
        numbers = np.full(len(values), np.nan)
        unparsed = np.zeros(len(values), dtype=bool)
        for index, text in enumerate(values):
            if text is None:
                continue
            try:
                numbers[index] = float(text)
            except ValueError:
                unparsed[index] = True
        return numbers, unparsed


def _bound(feature: Feature, bound: float) -> float:
    # The same bound the request model checks (contract.requests._bounds casts it so).
    return float(int(bound)) if feature.dtype == "int64" else float(bound)


def _value(feature: Feature, column: _Column, row: int, batch: pa.RecordBatch) -> Any:
    """A flagged row's value as the request model should see it (JSON-like Python)."""
    if column.unparsed is not None and column.unparsed[row]:
        return batch.column(feature.name)[row].as_py()  # the text itself: "not a valid number"
    if feature.is_categorical or not _is_number_type(batch.column(feature.name).type):
        return batch.column(feature.name)[row].as_py()
    number = float(column.encoded[row])
    if np.isnan(number):  # null, NaN or "nan": missing, as JSON null
        return None
    if feature.dtype == "int64" and np.isfinite(number) and number == int(number):
        return int(number)
    return number


def _is_number_type(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
    )


def problems_as_records(problems: list[FieldProblem]) -> list[Mapping[str, str]]:
    """The rejects column's value: [{field, problem}, ...], as in the API's 422 body."""
    return [{"field": p.field, "problem": p.problem} for p in problems]
