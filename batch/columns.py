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
    then the fields the model never reads), each row written once from its column. The bounds
    are screened on the whole matrix (each field's extremes); a required field is looked at for
    NaN only where its column can hold one (floats; anything with nulls).
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
        # Per row of the matrix, its bounds (+-inf never pass an unbounded numeric field). A level
        # code is never out of bounds; NaN (missing) never is either.
        self._low = np.array([_low(f) for f in self._fields], dtype=np.float64)
        self._high = np.array([_high(f) for f in self._fields], dtype=np.float64)
        self._buffer: np.ndarray | None = None
        self._lookups: dict[str, _DictionaryLookup] = {}  # per dictionary column: its last batch's lookup

    @property
    def names(self) -> list[str]:
        return self._spec.names

    def check(self, batch: pa.RecordBatch) -> CheckedBatch:
        n = batch.num_rows
        values = self._matrix(n)
        flagged = np.zeros(n, dtype=bool)
        unparsed: dict[str, np.ndarray] = {}
        for index, feature in enumerate(self._fields):
            column, row = batch.column(feature.name), values[index]
            if feature.is_categorical:
                broken = self._read_categorical(feature, column, row)
            else:
                broken, text = _read_numeric(feature, column, row)
                if text is not None:
                    unparsed[feature.name] = text
            if broken is not None:
                flagged |= broken
            if not feature.nullable and _may_hold_nan(feature, column):
                flagged |= np.isnan(row)  # a required field missing
        flagged |= self._out_of_bounds(values)

        valid = ~flagged
        rejects: list[tuple[int, list[FieldProblem]]] = []
        rows = np.ascontiguousarray(values[: self._n_inputs].T, dtype=np.float32)  # as NumPy does for RowEncoder
        for row_index in np.flatnonzero(flagged).tolist():
            applicant = {
                f.name: _value(f, values[index, row_index], unparsed.get(f.name), row_index, batch)
                for index, f in enumerate(self._fields)
            }
            try:
                model = self._requests().validate_applicant(applicant)
            except RequestInvalid as invalid:
                rejects.append((row_index, invalid.problems))
            else:  # the screen was stricter than the request model: the model has the last word
                valid[row_index] = True
                rows[row_index] = self._encoder.encode_one(model.__dict__)[0]
        return CheckedBatch(valid=valid, rows=rows if valid.all() else rows[valid], rejects=rejects)

    def _out_of_bounds(self, values: np.ndarray) -> np.ndarray:
        """The rows with a number beyond its field's bounds (NaN, missing, never is).

        Each field's lowest and highest value first (two passes over the matrix): only a field whose
        extremes break a bound is compared value by value."""
        lowest, highest = np.fmin.reduce(values, axis=1), np.fmax.reduce(values, axis=1)  # NaN ignored
        broken = np.zeros(values.shape[1], dtype=bool)
        for index in np.flatnonzero((lowest < self._low) | (highest > self._high)).tolist():
            broken |= values[index] < self._low[index]
            broken |= values[index] > self._high[index]
        return broken

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
        self, feature: Feature, column: pa.Array | pa.ChunkedArray, out: np.ndarray
    ) -> np.ndarray | None:
        """Level codes into `out` (float64, NaN when missing or unknown); returns the rows whose value is no level."""
        if pa.types.is_dictionary(column.type) and pa.types.is_string(column.type.value_type):
            # Parquet read with `read_dictionary`: look each distinct value up once, then per row by index.
            return self._dictionary_codes(feature.name, column, out)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            out.fill(np.nan)
            return ~column.is_null().to_numpy(zero_copy_only=False)
        codes = pc.index_in(column, value_set=self._levels[feature.name])
        out[:] = codes.cast(pa.float64()).to_numpy(zero_copy_only=False)  # null (missing, unknown) -> NaN
        return _no_level(codes, column)

    def _dictionary_codes(self, name: str, column: pa.DictionaryArray, out: np.ndarray) -> np.ndarray | None:
        """`_read_categorical` for a dictionary column: each distinct text looked up once, rows by index.

        A Parquet column chunk hands every batch the same dictionary, so its lookup is kept for the
        next batch. The indices are read as they lie in their buffer; under a null one the index is
        undefined, so it is clipped into range and its code then made NaN through the validity bitmap."""
        dictionary, indices = column.dictionary, column.indices
        lookup = self._lookups.get(name)
        if lookup is None or not lookup.dictionary.equals(dictionary):
            lookup = self._lookups[name] = _DictionaryLookup.of(dictionary, self._levels[name])
        validity, data = indices.buffers()
        offset, n = indices.offset, len(indices)
        if data is None or not len(lookup.codes):  # no rows, or every row null
            out.fill(np.nan)
            return None
        kind = indices.type  # an integer type (pyarrow's to_pandas_dtype would import pandas)
        index_dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.byte_width}")
        position = np.frombuffer(data, index_dtype, n, offset * kind.byte_width)
        lookup.codes.take(position, mode="clip", out=out)
        if indices.null_count:
            out += _null_adds(validity, offset, n)
        if lookup.unknown is None:  # every distinct value present is a level
            return None
        broken = lookup.unknown.take(position, mode="clip")
        if indices.null_count:
            broken &= indices.is_valid().to_numpy(zero_copy_only=False)
        return broken


@dataclass(frozen=True)
class _DictionaryLookup:
    """A dictionary's texts as level codes (NaN: null or no level), and which are no level (None: all are)."""

    dictionary: pa.Array
    codes: np.ndarray
    unknown: np.ndarray | None

    @classmethod
    def of(cls, dictionary: pa.Array, levels: pa.Array) -> _DictionaryLookup:
        found = pc.index_in(dictionary, value_set=levels)
        return cls(dictionary, found.cast(pa.float64()).to_numpy(zero_copy_only=False), _no_level(found, dictionary))


def _no_level(codes: pa.Array | pa.ChunkedArray, texts: pa.Array | pa.ChunkedArray) -> np.ndarray | None:
    """Which texts are present but no level (`codes` is their `index_in`); None when every present one is."""
    if codes.null_count == texts.null_count:
        return None
    return codes.is_null().to_numpy(zero_copy_only=False) & texts.is_valid().to_numpy(zero_copy_only=False)


def _read_numeric(
    feature: Feature, column: pa.Array | pa.ChunkedArray, out: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The numbers into `out` (float64, NaN when missing); returns (the rows broken beyond the bounds, the text
    cells that are no number)."""
    kind = column.type
    # Integers and floats as NumPy sees them (no copy without nulls; NaN for a null); the float64
    # matrix takes them as NumPy converts, which is how Arrow's cast converts too.
    if pa.types.is_integer(kind):  # whole numbers by type: only the bounds can fail
        out[:] = column.to_numpy(zero_copy_only=False)
        return None, None
    unparsed = None
    if pa.types.is_floating(kind):
        if pa.types.is_float64(kind) and isinstance(column, pa.Array) and column.null_count:
            nan_where_null(column, out)
        else:
            out[:] = column.to_numpy(zero_copy_only=False)
    elif pa.types.is_decimal(kind):
        out[:] = column.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        out[:], unparsed = _parse_numbers(column)
    else:  # booleans, dates, ...: never a number for the request model either
        out.fill(np.nan)
        return ~column.is_null().to_numpy(zero_copy_only=False), None
    broken = None
    if feature.dtype == "int64":  # a fraction in an integer field (NaN and inf compare false here)
        with np.errstate(invalid="ignore"):
            broken = np.abs(out - np.trunc(out)) > 0
    if unparsed is not None and unparsed.any():
        broken = unparsed if broken is None else broken | unparsed
    return broken, unparsed


def _may_hold_nan(feature: Feature, column: pa.Array | pa.ChunkedArray) -> bool:
    """Whether a field's matrix row can hold NaN (a missing value), besides an unknown level's (flagged already).

    An integer or a level is NaN only where it is null: no null, no NaN. A float can be NaN itself."""
    return column.null_count > 0 or not (feature.is_categorical or pa.types.is_integer(column.type))


# For each byte of an Arrow validity bitmap (least significant bit first), what to add to its 8
# values: -0.0 for a present one (x + -0.0 is x for every float, -0.0 included), NaN for a null one.
_NULL_ADDS = np.where(
    np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(bool), -0.0, np.nan
)


def nan_where_null(column: pa.Array, out: np.ndarray | None = None) -> np.ndarray:
    """A float64 column with nulls as NumPy gets it from `to_numpy` (NaN for a null), at a third of the cost.

    pyarrow copies such a column value by value; here the values are taken as they lie in
    their buffer, and one lookup per bitmap byte puts NaN on the null ones (the values under a
    null are undefined, and NaN plus anything is NaN). `out`: the array written (else a new one).
    """
    validity, data = column.buffers()
    offset, n = column.offset, len(column)
    if validity is None or data is None:
        numbers = column.to_numpy(zero_copy_only=False)
        if out is None:
            return numbers
        out[:] = numbers
        return out
    return np.add(_null_adds(validity, offset, n), np.frombuffer(data, np.float64, n, offset * 8), out=out)


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
