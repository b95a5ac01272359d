"""Raw applicant fields -> the model's float32 input rows, in feature-spec order.

Only the model's inputs are encoded: a protected attribute (`Feature.protected`) is accepted
and recorded by the API but never reaches the model, so it cannot move a score.

A categorical value becomes the index of its level in the spec (the same codes the
training pipeline uses); a missing value (absent or null) becomes NaN, which the
LightGBM trees route exactly as in training. NumPy only: this runs on every request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from contract.problems import FieldProblem, RequestInvalid
from contract.spec import FeatureSpec


class UnknownLevelError(RequestInvalid):
    """A categorical value that is not one of the spec's levels (the request models refuse it
    first; a caller that skipped them gets the same 422-style problem, never a crash)."""

    def __init__(self, field: str, levels: Sequence[str]) -> None:
        super().__init__([FieldProblem(field, f"Input should be one of the {len(levels)} levels of {field}")])
        self.field = field


class RowEncoder:
    """Encodes applicants into a float32 matrix whose columns are the spec's model inputs."""

    def __init__(self, spec: FeatureSpec) -> None:
        # Everything per column is worked out once, at start-up.
        inputs = spec.model_inputs
        self._names = tuple(f.name for f in inputs)
        self.width = len(self._names)
        # One C call reads a complete applicant's values in spec order.
        self._take = itemgetter(*self._names) if self.width > 1 else lambda applicant: (applicant[self._names[0]],)
        self._categorical = tuple(
            (index, f.name, f.levels, {level: float(code) for code, level in enumerate(f.levels)})
            for index, f in enumerate(inputs)
            if f.is_categorical
        )

    def encode_many(self, applicants: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode applicants to an (n, width) float32 array; absent or None -> NaN; other fields ignored."""
        values: list[Any] = []
        for applicant in applicants:
            try:
                row = list(self._take(applicant))
            except KeyError:  # some fields left out: they are missing
                get = applicant.get
                row = [get(name) for name in self._names]
            for index, name, levels, codes in self._categorical:
                level = row[index]
                if level is not None:
                    try:
                        row[index] = codes[level]
                    except (KeyError, TypeError):  # unknown or unhashable level
                        raise UnknownLevelError(name, levels) from None
            values.extend(row)
        # NumPy turns None into NaN when it builds a float array.
        return np.array(values, dtype=np.float32).reshape(len(applicants), self.width)

    def encode_one(self, applicant: Mapping[str, Any]) -> np.ndarray:
        """Encode one applicant to a (1, width) float32 array."""
        return self.encode_many((applicant,))
