"""Raw applicant fields -> the model's float32 input rows, in feature-spec order.

A categorical value becomes the index of its level in the spec (the same codes the
training pipeline uses); a missing value (absent or null) becomes NaN, which the
LightGBM trees route exactly as in training. NumPy only: this runs on every request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inference.spec import FeatureSpec


class UnknownLevelError(ValueError):
    """A categorical value that is not one of the spec's levels."""

    def __init__(self, field: str, value: object) -> None:
        super().__init__(f"{field}: unknown level {value!r}")
        self.field = field
        self.value = value


class RowEncoder:
    """Encodes applicants into a float32 matrix whose columns follow the spec."""

    def __init__(self, spec: FeatureSpec) -> None:
        # One (name, level->code table or None) pair per column, built once at start-up.
        self._plan: tuple[tuple[str, dict[str, float] | None], ...] = tuple(
            (f.name, {level: float(i) for i, level in enumerate(f.levels)} if f.is_categorical else None)
            for f in spec.features
        )
        self.width = len(self._plan)

    def encode_many(self, applicants: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Encode applicants to an (n, width) float32 array; absent or None -> NaN."""
        nan = math.nan
        values: list[float] = []
        append = values.append
        try:
            for applicant in applicants:
                get = applicant.get
                for name, codes in self._plan:
                    value = get(name)
                    if value is None:
                        append(nan)
                    elif codes is None:
                        append(value)
                    else:
                        append(codes[value])
        except KeyError as exc:  # only the level lookup raises KeyError here
            raise UnknownLevelError(name, exc.args[0]) from None
        return np.array(values, dtype=np.float32).reshape(len(applicants), self.width)

    def encode_one(self, applicant: Mapping[str, Any]) -> np.ndarray:
        """Encode one applicant to a (1, width) float32 array."""
        return self.encode_many((applicant,))
