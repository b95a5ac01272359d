"""The feature spec: the one description of the model's inputs.

It is written at training time, travels inside the ONNX artifact (metadata key
``feature_spec``) and is read by everything downstream: the API's request schema,
the row encoder, monitoring and the traffic simulator. Standard library only, so the
serving image can read it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class Feature:
    """One raw application field, as a client sends it."""

    name: str
    kind: FeatureKind
    dtype: Literal["int64", "float64", "string"]
    nullable: bool
    description: str
    example: Any
    minimum: float | None = None
    maximum: float | None = None
    levels: tuple[str, ...] = field(default_factory=tuple)
    protected: bool = False
    """A protected attribute (gender, ...): accepted and recorded, never a model input."""
    label: str = ""
    """A short noun phrase for letters ("Annual income"); empty: the description stands in."""

    @property
    def is_categorical(self) -> bool:
        return self.kind == "categorical"

    @property
    def display_name(self) -> str:
        return self.label or self.description


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered raw fields a client sends; the non-protected ones, in this order, are the model's input."""

    features: tuple[Feature, ...]

    @property
    def names(self) -> list[str]:
        """Every accepted field, protected ones included (requests, records, monitoring)."""
        return [f.name for f in self.features]

    @property
    def model_inputs(self) -> tuple[Feature, ...]:
        """The fields the model reads: the input tensor's columns, in order."""
        return tuple(f for f in self.features if not f.protected)

    @property
    def input_names(self) -> list[str]:
        return [f.name for f in self.model_inputs]

    @property
    def protected_names(self) -> list[str]:
        return [f.name for f in self.features if f.protected]

    @property
    def numeric_names(self) -> list[str]:
        return [f.name for f in self.features if not f.is_categorical]

    @property
    def categorical_names(self) -> list[str]:
        return [f.name for f in self.features if f.is_categorical]

    def __len__(self) -> int:
        """The number of accepted fields (the model's input width is `len(spec.model_inputs)`)."""
        return len(self.features)

    def __getitem__(self, name: str) -> Feature:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def example(self) -> dict[str, Any]:
        """A complete, valid applicant built from each feature's example value."""
        return {f.name: f.example for f in self.features}

    def to_json(self) -> str:
        return json.dumps([asdict(f) for f in self.features], separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        raw = json.loads(text)
        return cls(tuple(Feature(**{**item, "levels": tuple(item.get("levels") or ())}) for item in raw))
