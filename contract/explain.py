"""Exact TreeSHAP attributions and refusal reasons at serve time, NumPy only.

Path-dependent TreeSHAP values of one tree depend on a row only through the outcome of each
of the tree's split tests. Export (export/treeshap.py) therefore tabulates, per tree, the
SHAP vector for every pattern of split outcomes (2^internal nodes patterns over the features
the tree uses) and carries the tables in the artifact (metadata key `explainer`). Here a
row's model features are computed exactly as the trees saw them (`contract.features`), every
split test is evaluated at once with LightGBM's rules (missing values, default direction,
zero-as-missing), each tree's pattern indexes its table, and the rows are summed per feature.
The export proves the result equals LightGBM's `pred_contrib` before it writes the artifact.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from contract.features import ANOMALY_FLAG, DAYS_EMPLOYED, DAYS_EMPLOYED_ANOMALY, Engineering
from contract.metadata import ModelMetadata
from contract.spec import Feature, FeatureSpec

EXPLAINER_FORMAT = 1
MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal)
DEFAULT_REASONS = 4
MAX_REASONS = 10
ARRAY_NAMES = (
    "node_feature",
    "node_threshold",
    "node_default_left",
    "node_missing",
    "node_bit",
    "table",
    "table_feature",
)


class ExplainerUnavailable(RuntimeError):
    """The artifact carries no explainer (exported before reasons existed) or a malformed one."""


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """Arrays -> base64 of a compressed .npz (no pickle), for a string metadata value."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def unpack_arrays(text: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


class Explainer:
    """TreeSHAP contributions (log-odds) of the served trees, and the reasons a refusal letter gives.

    Build it once per loaded artifact: `Explainer.from_metadata(scorer.metadata)`; it reads
    the rows `scorer.encoder` makes, shape (n, len(spec.model_inputs)), float32.
    """

    def __init__(self, payload: Mapping[str, Any], spec: FeatureSpec) -> None:
        try:
            if payload.get("format") != EXPLAINER_FORMAT:
                raise ValueError(f"format {payload.get('format')!r}, expected {EXPLAINER_FORMAT}")
            self.engineering = Engineering.from_dict(payload["engineering"])
            self.feature_names: list[str] = list(payload["feature_names"])
            self.base_value = float(payload["base_value"])
            typical = np.asarray(payload["typical"], dtype=np.float64)
            arrays = unpack_arrays(payload["arrays"])
            missing = [name for name in ARRAY_NAMES if name not in arrays]
            if missing:
                raise ValueError(f"arrays {missing} missing")
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ExplainerUnavailable(f"the artifact's explainer does not parse: {exc}") from None
        if self.feature_names != self.engineering.feature_names:
            raise ExplainerUnavailable("the explainer's feature names differ from its engineering")
        if list(self.engineering.input_names) != spec.input_names:
            raise ExplainerUnavailable("the explainer's inputs differ from the feature spec's model inputs")
        n_features = len(self.feature_names)
        n_trees, depth = arrays["node_feature"].shape
        width = arrays["table"].shape[2]
        # Flat views, laid out once: one gather evaluates every split test of every tree.
        self._node_feature = arrays["node_feature"].astype(np.intp).ravel()
        self._threshold = arrays["node_threshold"].astype(np.float64).ravel()
        self._default_left = arrays["node_default_left"].astype(bool).ravel()
        missing_type = arrays["node_missing"].ravel()
        self._zero_missing = missing_type == MISSING_ZERO
        self._bit = arrays["node_bit"].astype(np.int64)  # (trees, depth): 2^j, 0 for padding
        self._bit_u8 = (1 << np.arange(min(depth, 8))).astype(np.uint8)  # used when depth <= 8
        padding = (self._bit == 0).ravel()
        # LightGBM: NaN is the missing value for a NaN-missing split (default way); for the other
        # splits NaN counts as 0.0, which is missing for a zero-as-missing split (default way) and
        # an ordinary value otherwise. So where a NaN goes is fixed per node.
        self._nan_left = np.where(missing_type == MISSING_NONE, 0.0 <= self._threshold, self._default_left)
        # A padding node never goes left, whatever it reads.
        self._threshold[padding] = -np.inf
        self._nan_left[padding] = False
        self._zero_missing[padding] = False
        self._any_zero_missing = bool(self._zero_missing.any())
        self._tree_offset = np.arange(n_trees, dtype=np.int64) * arrays["table"].shape[1]
        self._table = arrays["table"].astype(np.float64).reshape(-1, width)  # (trees * patterns, width)
        # Slot (tree, k) -> the model feature it adds to; padding slots add to one extra column.
        self._slot_feature = arrays["table_feature"].astype(np.intp).ravel()
        self._n_slots = n_features + 1
        self._shape = (n_trees, depth, width)
        self._wording = [
            _Wording.build(name, self.engineering, spec, float(t))
            for name, t in zip(self.feature_names, typical, strict=True)
        ]

    @classmethod
    def from_metadata(cls, metadata: ModelMetadata) -> Explainer:
        if not metadata.explainer:
            raise ExplainerUnavailable("the artifact carries no explainer: re-export it with `make export`")
        return cls(metadata.explainer, metadata.feature_spec)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def model_features(self, rows: np.ndarray) -> np.ndarray:
        """The values the trees compare: (n, n_features) float32."""
        return self.engineering.transform(rows)

    def explain(self, rows: np.ndarray) -> tuple[float, np.ndarray]:
        """(base value, contributions (n, n_features) float64) in log-odds; base + row sum = the score's log-odds."""
        return self.base_value, self._contributions(self.model_features(rows))

    def _contributions(self, features: np.ndarray) -> np.ndarray:
        n_trees, depth, width = self._shape
        n = features.shape[0]
        values = features[:, self._node_feature]  # float32; compared with float64 thresholds exactly
        left = np.where(np.isnan(values), self._nan_left, values <= self._threshold)
        if self._any_zero_missing:  # zero-as-missing splits send |x| <= 1e-35 the default way
            zero = self._zero_missing & (np.abs(values) <= ZERO_THRESHOLD)
            left = np.where(zero, self._default_left, left)
        if depth <= 8:  # bit j of a tree's pattern = node j went left; padding nodes never do
            pattern = left.reshape(n, n_trees, depth).view(np.uint8) @ self._bit_u8
        else:
            pattern = (left.reshape(n, n_trees, depth) * self._bit).sum(axis=2)
        gathered = self._table[pattern + self._tree_offset]  # (n, trees, width)
        # Sum each row's slots per feature: one weighted count (BLAS would add threads, not speed).
        slots = (np.arange(n)[:, None] * self._n_slots + self._slot_feature).ravel()
        totals = np.bincount(slots, gathered.ravel(), n * self._n_slots).reshape(n, self._n_slots)
        return totals[:, : self.n_features]

    def attribution(self, contributions: np.ndarray) -> dict[str, Any]:
        """`?explain=true` for one applicant: base value and one value per model feature, by name."""
        return {
            "base_value": self.base_value,
            "contributions": dict(zip(self.feature_names, map(float, contributions), strict=True)),
        }

    def reasons(
        self, rows: np.ndarray, contributions: np.ndarray, k: int = DEFAULT_REASONS
    ) -> list[list[dict[str, Any]]]:
        """Per row, the k factors that pushed hardest towards refusal (contribution > 0), largest first."""
        return self._reasons(self.model_features(rows), contributions, k)

    def explain_reasons(self, rows: np.ndarray, k: int = DEFAULT_REASONS) -> list[list[dict[str, Any]]]:
        """`reasons` of freshly explained rows (what a refusal answer needs), the features computed once."""
        features = self.model_features(rows)
        return self._reasons(features, self._contributions(features), k)

    def refusal_reasons(
        self, rows: np.ndarray, predictions: Sequence[int] | np.ndarray, k: int = DEFAULT_REASONS
    ) -> list[list[dict[str, Any]] | None]:
        """What each result carries: the reasons of a refused row (prediction 1), None for an accepted one."""
        refused = np.flatnonzero(np.asarray(predictions) == 1)
        reasons: list[list[dict[str, Any]] | None] = [None] * len(predictions)
        if refused.size:
            for i, given in zip(refused.tolist(), self.explain_reasons(rows[refused], k), strict=True):
                reasons[i] = given
        return reasons

    def _reasons(self, features: np.ndarray, contributions: np.ndarray, k: int) -> list[list[dict[str, Any]]]:
        if not 1 <= k <= MAX_REASONS:
            raise ValueError(f"k must be between 1 and {MAX_REASONS}, got {k}")
        top = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
        out = []
        for values, row, order in zip(features.tolist(), contributions, top, strict=True):
            out.append([self._reason(j, values[j], float(row[j]), values) for j in order.tolist() if row[j] > 0])
        return out

    def _reason(self, j: int, value: float, contribution: float, features: list[float]) -> dict[str, Any]:
        wording = self._wording[j]
        return {
            "feature": self.feature_names[j],
            "fields": list(wording.fields),
            "value": wording.value(value, features, self.feature_names),
            "contribution": contribution,
            "text": wording.text(value, features, self.feature_names),
        }


class _Wording:
    """How one model feature reads in a letter: its raw fields, its value as sent, its sentence."""

    def __init__(
        self,
        name: str,
        fields: Sequence[str],
        kind: str,
        labels: Sequence[str],
        typical: float,
        levels: Sequence[str] = (),
    ) -> None:
        self.name, self.fields, self.kind, self.labels, self.typical, self.levels = (
            name,
            tuple(fields),
            kind,
            tuple(labels),
            typical,
            tuple(levels),
        )

    @classmethod
    def build(cls, name: str, engineering: Engineering, spec: FeatureSpec, typical: float) -> _Wording:
        fields = engineering.sources(name)
        labels = [_label(spec[f]) for f in fields]
        if name == ANOMALY_FLAG:
            return cls(name, fields, "not_employed", labels, typical)
        if name in engineering.ratios:
            return cls(name, fields, "ratio", labels, typical)
        feature = spec[name]
        if feature.is_categorical:
            return cls(name, fields, "categorical", labels, typical, feature.levels)
        if feature.dtype == "int64" and feature.minimum == 0 and feature.maximum == 1:
            return cls(name, fields, "yes_no", labels, typical)
        return cls(name, fields, "number", labels, typical)

    def value(self, value: float, features: list[float], names: list[str]) -> Any:
        """The value as the client sent it: a level, a number, None when missing."""
        if self.name == DAYS_EMPLOYED and _not_employed(features, names):
            return DAYS_EMPLOYED_ANOMALY  # the trees read it as missing; the client sent the placeholder
        if math.isnan(value):
            return None
        if self.kind == "categorical":
            return self.levels[int(value)]
        if self.kind in ("yes_no", "not_employed") or value.is_integer():
            return int(value)
        return value

    def text(self, value: float, features: list[float], names: list[str]) -> str:
        label = self.labels[0]
        if self.kind == "not_employed":
            return "Not in employment (pensioner or unemployed)" if value == 1 else "In employment"
        if self.kind == "ratio":
            numerator, denominator = self.labels
            if math.isnan(value):
                return self._unassessable(features, names)
            return f"{numerator} is {self._level(value, self.fields[0])} relative to {_lower(denominator)}"
        if self.name == DAYS_EMPLOYED and _not_employed(features, names):
            return "Not in employment (pensioner or unemployed)"
        if math.isnan(value):
            return f"{label} not provided"
        if self.kind == "categorical":
            level = self.levels[int(value)]
            return f"{label}: {_YES_NO.get(level, level)}"
        if self.kind == "yes_no":
            return f"{label}: {'yes' if value == 1 else 'no'}"
        return f"{label} is {self._level(value, self.fields[0])}"

    def _level(self, value: float, field: str) -> str:
        # DAYS_* are negative day counts: the duration is -value, so "above typical" means shorter.
        if field.startswith("DAYS_") and field != "DAYS_BIRTH" and self.kind != "ratio":
            return "short" if value > self.typical else "long"
        if field == "DAYS_BIRTH":
            return "low" if value > self.typical else "high"
        if self.kind == "ratio" and field.startswith("DAYS_"):  # a ratio of two durations
            return "long" if value > self.typical else "short"
        return "high" if value > self.typical else "low"

    def _unassessable(self, features: list[float], names: list[str]) -> str:
        """Why a ratio is missing: a field not provided, or no current job."""
        for field, label in zip(self.fields, self.labels, strict=True):
            if field == DAYS_EMPLOYED and _not_employed(features, names):
                return "Not in employment (pensioner or unemployed)"
            if math.isnan(features[names.index(field)]):
                return f"{label} not provided"
        return f"{self.labels[0]} relative to {_lower(self.labels[1])} cannot be assessed"


_YES_NO = {"Y": "yes", "N": "no"}


def _not_employed(features: list[float], names: list[str]) -> bool:
    return features[names.index(ANOMALY_FLAG)] == 1


def _label(feature: Feature) -> str:
    return feature.display_name.removesuffix(" (1/0)").removesuffix(" (Y/N)")


def _lower(label: str) -> str:
    return label[:1].lower() + label[1:]
