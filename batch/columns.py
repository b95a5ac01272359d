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
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from contract.encoding import RowEncoder
from contract.problems import FieldProblem, RequestInvalid
from contract.spec import Feature, FeatureSpec

if TYPE_CHECKING:
    from contract.requests import RequestModels


@dataclass(frozen=True)
class CheckedBatch:
    """The outcome for one batch: which rows are scored, their model rows, the rejects."""

    valid: np.ndarray
    """Boolean mask over the batch's rows: True = scored."""
    rows: np.ndarray
    """float32 (valid.sum(), n_features) model input, in the batch's order."""
    rejects: list[tuple[int, list[FieldProblem]]]
    """(index in the batch, the API's problems) for every refused row, in order."""


_HUGE = float(np.finfo(np.float64).max)  # an unbounded field's bound: only +-inf lies beyond it


class BatchChecker:
    """Validates and encodes Arrow batches for one artifact's feature spec.

    Each batch becomes one float64 matrix, a row per field (the model inputs in spec order,
    then the fields the model never reads), and the spec's rules are checked on the whole
    matrix at once: a few NumPy passes per batch, not one per field.
    """

    def __init__(self, spec: FeatureSpec, requests: RequestModels | None = None) -> None:
        self._spec = spec
        self._request_models = requests  # None: built when a first row needs them (most batches never do)
        self._encoder = RowEncoder(spec)
        self._levels = {f.name: pa.array(f.levels, pa.string()) for f in spec.features if f.is_categorical}
        # Every field is validated (protected ones too, as the API does); the model reads its inputs only.
        inputs = spec.input_names
        self._fields = [spec[name] for name in inputs] + [f for f in spec.features if f.name not in set(inputs)]
        self._n_inputs = len(inputs)
        # Per row of the matrix: the bounds (+-inf never pass an unbounded numeric field), and which
        # fields must be present. A level code is never out of bounds; NaN (missing) never is either.
        self._low = np.array([_low(f) for f in self._fields], dtype=np.float64)[:, None]
        self._high = np.array([_high(f) for f in self._fields], dtype=np.float64)[:, None]
        self._required = np.array([i for i, f in enumerate(self._fields) if not f.nullable], dtype=np.intp)
        self._buffer: np.ndarray | None = None

    @property
    def names(self) -> list[str]:
        return self._spec.names

    def check(self, batch: pa.RecordBatch) -> CheckedBatch:
        n = batch.num_rows
        values = self._matrix(n)
        flagged = np.zeros(n, dtype=bool)
        unparsed: dict[str, np.ndarray] = {}
        for index, feature in enumerate(self._fields):
            column = batch.column(feature.name)
            if feature.is_categorical:
                values[index], broken = self._read_categorical(feature, column)
            else:
                values[index], broken, text = _read_numeric(feature, column)
                if text is not None:
                    unparsed[feature.name] = text
            if broken is not None:
                flagged |= broken
        with np.errstate(invalid="ignore"):
            out_of_bounds = values < self._low
            out_of_bounds |= values > self._high
        flagged |= out_of_bounds.any(axis=0)
        flagged |= np.isnan(values[self._required]).any(axis=0)

        valid = ~flagged
        rejects: list[tuple[int, list[FieldProblem]]] = []
        rows = np.ascontiguousarray(values[: self._n_inputs].T, dtype=np.float32)  # as NumPy does for RowEncoder
        for row in np.flatnonzero(flagged).tolist():
            applicant = {
                f.name: _value(f, values[index, row], unparsed.get(f.name), row, batch)
                for index, f in enumerate(self._fields)
            }
            try:
                model = self._requests().validate_applicant(applicant)
            except RequestInvalid as invalid:
                rejects.append((row, invalid.problems))
            else:  # the screen was stricter than the request model: the model has the last word
                valid[row] = True
                rows[row] = self._encoder.encode_one(model.__dict__)[0]
        return CheckedBatch(valid=valid, rows=rows if valid.all() else rows[valid], rejects=rejects)

    def _matrix(self, n: int) -> np.ndarray:
        """The float64 matrix for a batch of n rows: one buffer, kept for the next batch of that size.

        A batch's matrix is ~10 MB; a fresh one each batch would cost its page faults again
        wherever the allocator hands that memory back to the system."""
        if self._buffer is None or self._buffer.shape[1] != n:
            self._buffer = np.empty((len(self._fields), n), dtype=np.float64)
        return self._buffer

    def _requests(self) -> RequestModels:
        if self._request_models is None:
            from contract.requests import build_request_models  # pydantic: only once a row needs it

            # The batch size limit is the API's transport limit; one row is validated at a time here.
            self._request_models = build_request_models(self._spec, max_batch_size=1)
        return self._request_models

    def _read_categorical(
        self, feature: Feature, column: pa.Array | pa.ChunkedArray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(level codes as float64, NaN when missing or unknown; the rows whose value is no level)."""
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            # Parquet read with `read_dictionary`: look each distinct value up once, then per row by index.
            return _dictionary_codes(column, self._levels[feature.name])
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            return np.full(len(column), np.nan), ~column.is_null().to_numpy(zero_copy_only=False)
        return self._codes(pc.index_in(column, value_set=self._levels[feature.name]), column)

    @staticmethod
    def _codes(codes: pa.Array, column: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
        encoded = codes.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null (missing, unknown) -> NaN
        if codes.null_count == column.null_count:  # every value present is a level
            return encoded, None
        return encoded, codes.is_null().to_numpy(zero_copy_only=False) & column.is_valid().to_numpy(
            zero_copy_only=False
        )


def _dictionary_codes(column: pa.DictionaryArray, levels: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """`_read_categorical` for a dictionary column: each distinct text looked up once, rows by index.

    The indices are read as they lie in their buffer; under a null one the index is undefined,
    so it is clipped into range and its code then made NaN through the validity bitmap."""
    dictionary, indices = column.dictionary, column.indices
    lookup = pc.index_in(dictionary, value_set=levels)
    codes = lookup.cast(pa.float64()).to_numpy(zero_copy_only=False)  # NaN: a null or unknown text
    validity, data = indices.buffers()
    offset, n = indices.offset, len(indices)
    if data is None or not len(codes):  # no rows, or every row null
        return np.full(n, np.nan), None
    kind = indices.type  # an integer type (pyarrow's to_pandas_dtype would import pandas)
    index_dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.byte_width}")
    position = np.frombuffer(data, index_dtype, n, offset * kind.byte_width)
    values = codes.take(position, mode="clip")
    if indices.null_count:
        values += _null_adds(validity, offset, n)
    if lookup.null_count == dictionary.null_count:  # every distinct value present is a level
        return values, None
    unknown = lookup.is_null().to_numpy(zero_copy_only=False) & dictionary.is_valid().to_numpy(zero_copy_only=False)
    broken = unknown.take(position, mode="clip")
    if indices.null_count:
        broken &= indices.is_valid().to_numpy(zero_copy_only=False)
    return values, broken


def _read_numeric(
    feature: Feature, column: pa.Array | pa.ChunkedArray
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(the numbers as float64, NaN when missing; rows broken beyond the bounds; text cells that are no number)."""
    kind = column.type
    # Integers and floats as NumPy sees them (no copy without nulls; NaN for a null); the caller's
    # float64 matrix takes them as NumPy converts, which is how Arrow's cast converts too.
    if pa.types.is_integer(kind):  # whole numbers by type: only the bounds can fail
        return column.to_numpy(zero_copy_only=False), None, None
    unparsed = None
    if pa.types.is_floating(kind):
        if pa.types.is_float64(kind) and isinstance(column, pa.Array) and column.null_count:
            numbers = nan_where_null(column)
        else:
            numbers = column.to_numpy(zero_copy_only=False)
    elif pa.types.is_decimal(kind):
        numbers = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        numbers, unparsed = _parse_numbers(column)
    else:  # booleans, dates, ...: never a number for the request model either
        return np.full(len(column), np.nan), ~column.is_null().to_numpy(zero_copy_only=False), None
    broken = None
    if feature.dtype == "int64":  # a fraction in an integer field (NaN and inf compare false here)
        with np.errstate(invalid="ignore"):
            broken = np.abs(numbers - np.trunc(numbers)) > 0
    if unparsed is not None and unparsed.any():
        broken = unparsed if broken is None else broken | unparsed
    return numbers, broken, unparsed


# For each byte of an Arrow validity bitmap (least significant bit first), what to add to its 8
# values: -0.0 for a present one (x + -0.0 is x for every float, -0.0 included), NaN for a null one.
_NULL_ADDS = np.where(
    np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(bool), -0.0, np.nan
)


def nan_where_null(column: pa.Array) -> np.ndarray:
    """A float64 column with nulls as NumPy gets it from `to_numpy` (NaN for a null), at a third of the cost.

    pyarrow copies such a column value by value; here the values are taken as they lie in
    their buffer, and one lookup per bitmap byte puts NaN on the null ones (the values under a
    null are undefined, and NaN plus anything is NaN).
    """
    validity, data = column.buffers()
    offset, n = column.offset, len(column)
    if validity is None or data is None:
        return column.to_numpy(zero_copy_only=False)
    return np.add(_null_adds(validity, offset, n), np.frombuffer(data, np.float64, n, offset * 8))


def _null_adds(validity: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """Per value of an Arrow array with nulls: -0.0 where present, NaN where null (from its validity bitmap)."""
    bitmap = np.frombuffer(validity, np.uint8, (offset + n + 7) // 8)
    return _NULL_ADDS.take(bitmap, axis=0).reshape(-1)[offset : offset + n]


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


def _low(feature: Feature) -> float:
    if feature.is_categorical:
        return -np.inf
    return _bound(feature, feature.minimum) if feature.minimum is not None else -_HUGE


def _high(feature: Feature) -> float:
    if feature.is_categorical:
        return np.inf
    return _bound(feature, feature.maximum) if feature.maximum is not None else _HUGE


def _value(feature: Feature, number: float, unparsed: np.ndarray | None, row: int, batch: pa.RecordBatch) -> Any:
    """A flagged row's value as the request model should see it (JSON-like Python)."""
    if unparsed is not None and unparsed[row]:
        return batch.column(feature.name)[row].as_py()  # the text itself: "not a valid number"
    if feature.is_categorical or not _is_number_type(batch.column(feature.name).type):
        return batch.column(feature.name)[row].as_py()
    number = float(number)
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
