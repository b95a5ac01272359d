"""Exact TreeSHAP attributions and refusal reasons at serve time, NumPy only.

Path-dependent TreeSHAP values of one tree depend on a row only through the outcome of each
of the tree's split tests. Export (export/treeshap.py) therefore tabulates, per tree, the
SHAP vector for every pattern of split outcomes (2^internal nodes patterns over the features
the tree uses) and carries the tables in the artifact (metadata key `explainer`). Here a
row's model features are computed exactly as the trees saw them (`contract.features`), every
split test is evaluated at once with LightGBM's rules (missing values, default direction,
zero-as-missing), each tree's pattern indexes its table, and the rows are summed per feature.
Artifacts exported since issue 11's last step compute the same TreeSHAP inside the served graph,
in the scoring run (export/shap_graph.py, from `layout()` below): the scorer hands its outputs over
as `Attributions` and only the wording runs here; the NumPy passes serve older artifacts. The
export proves the graph's values equal LightGBM's `pred_contrib` before it writes the artifact.

A refusal carries its reasons, so this runs on every refused request: everything that does not
depend on the row (node layout, the sentences each feature can give) is worked out once, when
the explainer is built, and a batch of rows takes the same dozen NumPy calls as one row.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
# A batch is explained this many rows at a time: each pass's temporaries (a few hundred kB) stay
# in cache and are reused, where a whole batch's would be fresh memory (3 times slower at 300 rows).
ROWS_PER_PASS = 32
ARRAY_NAMES = (
    "node_feature",
    "node_threshold",
    "node_default_left",
    "node_missing",
    "node_bit",
    "table",
    "table_feature",
)


@dataclass(frozen=True)
class Attributions:
    """TreeSHAP as the served graph computed it in the scoring run (export/shap_graph.py), for the
    m rows it was asked to attribute (the refused ones, or all)."""

    rows: np.ndarray  # (m,) int64: those rows' indices in the scored batch, ascending
    contributions: np.ndarray  # (m, n_features) float32 log-odds
    top: np.ndarray  # (m, MAX_REASONS) int64: the largest contributions' features, largest first
    features: np.ndarray  # (m, n_features) float32: the values the trees compared

    def of(self, wanted: np.ndarray) -> Attributions:
        """The attributions of the batch rows `wanted` (ascending indices), renumbered 0..len-1."""
        if np.array_equal(self.rows, wanted):  # the refused rows, as the graph selected them
            return Attributions(np.arange(len(wanted)), self.contributions, self.top, self.features)
        at = np.searchsorted(self.rows, wanted)
        if not (at < len(self.rows)).all() or not np.array_equal(self.rows[at], wanted):
            raise ValueError("the graph did not attribute every row asked for")
        return Attributions(np.arange(len(wanted)), self.contributions[at], self.top[at], self.features[at])


def attribution_bound(threshold: float) -> np.ndarray:
    """The smallest float32 >= `threshold` (the graph's default `attribution_threshold`): for a
    float32 probability p, `p >= bound` in float32 is exactly the decision's `p >= threshold` in
    float64, as no float32 lies between the two."""
    below = float32_at_most(np.asarray(threshold, np.float64))
    return np.asarray(below if float(below) == threshold else np.nextafter(below, np.float32(np.inf)), np.float32)


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
        self._lay_out_trees(arrays)
        self._wording = [
            _Wording.build(name, self.engineering, spec, float(t))
            for name, t in zip(self.feature_names, typical, strict=True)
        ]

    def _lay_out_trees(self, arrays: Mapping[str, np.ndarray]) -> None:
        """The trees laid out once so that a row's split patterns take one gather, one comparison
        and one bit-pack, and its contributions one table gather and one weighted count.

        Each tree gets a group of whole bytes of bits: its nodes' outcomes, then its own index
        in binary (constant bits), then zeros; np.packbits turns the group into the row of the
        flat table (tree * patterns + pattern) directly."""
        n_features = len(self.feature_names)
        n_trees, depth = arrays["node_feature"].shape
        patterns, width = arrays["table"].shape[1:]
        if patterns != 2**depth:
            raise ExplainerUnavailable(f"the explainer's tables hold {patterns} patterns, not 2^{depth}")
        tree_bits = max(1, (n_trees - 1).bit_length())
        pattern_bytes = next((b for b in (1, 2, 4, 8) if depth + tree_bits <= 8 * b), None)
        if pattern_bytes is None:
            raise ExplainerUnavailable(f"{n_trees} trees of {depth} splits do not fit 64-bit patterns")
        bits = 8 * pattern_bytes
        real = np.zeros((n_trees, bits), dtype=bool)
        real[:, :depth] = arrays["node_bit"] != 0
        tree_bit = np.zeros((n_trees, bits), dtype=bool)  # the constant bits spelling each tree's index
        tree_bit[:, depth : depth + tree_bits] = (np.arange(n_trees)[:, None] >> np.arange(tree_bits)) & 1

        def padded(name: str, fill: Any) -> np.ndarray:  # (trees, bits): `fill` for every padding node
            out = np.full((n_trees, bits), fill, dtype=arrays[name].dtype)
            out[:, :depth] = arrays[name]
            return np.where(real, out, fill)

        threshold = padded("node_threshold", -np.inf)
        default_left = padded("node_default_left", False)
        missing_type = padded("node_missing", MISSING_NONE)
        # LightGBM: NaN is the missing value for a NaN-missing split (default way); for the other
        # splits NaN counts as 0.0, which is missing for a zero-as-missing split (default way) and
        # an ordinary value otherwise. So where a NaN goes is fixed per node.
        nan_left = real & np.where(missing_type == MISSING_NONE, 0.0 <= threshold, default_left)
        # A node's bit is `x <= t` (NaN: 0); where NaN goes left it is instead `x > t`, the test
        # negated (NaN: 0 again), and each tree's table is re-indexed to read those bits flipped.
        # Both become one float32 comparison `sign * x <= bound`, exact for every float32 x:
        # x <= t  <=>  x <= (largest float32 <= t);  x > t  <=>  -x <= -(smallest float32 > t).
        below = float32_at_most(threshold)
        self._node_sign = np.where(nan_left, np.float32(-1), np.float32(1)).ravel()
        bound = np.where(nan_left, -np.nextafter(below, np.float32(np.inf)), below)
        # Every other bit reads the not-employed flag, always 0 or 1: against +inf it is always
        # set (a tree-index bit that is 1), against -inf never (padding, a tree-index bit that is 0).
        self._node_bound = np.where(tree_bit, np.float32(np.inf), bound).ravel()
        flag = self.feature_names.index(ANOMALY_FLAG)
        node_feature = padded("node_feature", flag).astype(np.intp)
        self._node_feature = node_feature.ravel()
        self._zero_missing = (real & (missing_type == MISSING_ZERO)).ravel()
        self._zero_bit = (default_left ^ nan_left).ravel()  # the bit of a zero-as-missing node's default way
        self._any_zero_missing = bool(self._zero_missing.any())
        self._pattern_dtype = np.dtype(f"<u{pattern_bytes}")  # little-endian: bit j of a group is 2^j
        flips = (nan_left[:, :depth].astype(np.int64) << np.arange(depth)).sum(axis=1)  # (trees,)
        by_bits = np.arange(patterns)[None, :] ^ flips[:, None]  # the table row each pattern of bits reads
        table = arrays["table"].astype(np.float64)[np.arange(n_trees)[:, None], by_bits]
        self._table = table.reshape(-1, width)  # (trees * patterns, width)
        # Slot (tree, k) -> the model feature it adds to; padding slots add to one extra column.
        slot_feature = arrays["table_feature"].astype(np.intp).ravel()
        self._n_slots = n_features + 1
        # Row r's slots count into bins r * n_slots + feature: laid out for a whole pass.
        self._pass_slots = (np.arange(ROWS_PER_PASS)[:, None] * self._n_slots + slot_feature).ravel()
        # The same tests and tables per tree, for the attribution graph (export/shap_graph.py).
        self._layout = {
            "node_feature": node_feature[:, :depth],
            "node_sign": self._node_sign.reshape(n_trees, bits)[:, :depth],
            "node_bound": self._node_bound.reshape(n_trees, bits)[:, :depth],
            "zero_missing": self._zero_missing.reshape(n_trees, bits)[:, :depth],
            "table": self._table,
            "slot_feature": slot_feature.reshape(n_trees, width),
        }

    def layout(self) -> dict[str, np.ndarray]:
        """Per tree (rows): each split's feature, `sign * x <= bound` test (float32) and zero-as-missing
        flag, (trees, depth); the table (trees * 2^depth, width) float64, rows indexed by the pattern
        of those tests' bits (bit j = split j); each slot's feature (trees, width), n_features: padding."""
        return dict(self._layout)

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
        n = features.shape[0]
        if n <= ROWS_PER_PASS:
            return self._pass(features)
        out = np.empty((n, self.n_features))
        for start in range(0, n, ROWS_PER_PASS):
            out[start : start + ROWS_PER_PASS] = self._pass(features[start : start + ROWS_PER_PASS])
        return out

    def _pass(self, features: np.ndarray) -> np.ndarray:
        """Contributions of at most ROWS_PER_PASS rows."""
        n = features.shape[0]
        values = features.take(self._node_feature, axis=1)  # (n, trees * bits) float32
        values *= self._node_sign
        bits = values <= self._node_bound
        if self._any_zero_missing:  # zero-as-missing splits send |x| <= 1e-35 the default way
            zero = self._zero_missing & (np.abs(values) <= ZERO_THRESHOLD)
            bits = np.where(zero, self._zero_bit, bits)
        table_rows = np.packbits(bits, axis=1, bitorder="little").view(self._pattern_dtype)  # (n, trees)
        gathered = self._table.take(table_rows, axis=0)  # (n, trees, width)
        # Sum each row's slots per feature: one weighted count (BLAS would add threads, not speed).
        slots = self._pass_slots[: gathered.size]
        totals = np.bincount(slots, gathered.ravel(), n * self._n_slots).reshape(n, self._n_slots)
        return totals[:, : self._n_slots - 1]  # the last column: padding slots

    def attribution(self, contributions: np.ndarray) -> dict[str, Any]:
        """`?explain=true` for one applicant: base value and one value per model feature, by name."""
        return {
            "base_value": self.base_value,
            "contributions": dict(zip(self.feature_names, contributions.tolist(), strict=True)),
        }

    def reasons(
        self, rows: np.ndarray, contributions: np.ndarray, k: int = DEFAULT_REASONS
    ) -> list[list[dict[str, Any]]]:
        """Per row, the k factors that pushed hardest towards refusal (contribution > 0), largest first."""
        return self._reasons(self.model_features(rows), contributions, k)

    def explain_reasons(
        self, rows: np.ndarray, k: int = DEFAULT_REASONS, attributions: Attributions | None = None
    ) -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        """(contributions, `reasons`) of the rows: read from the graph's `attributions` when the
        artifact computes them, else explained here (artifacts exported before the graph did)."""
        if attributions is not None:
            if len(attributions.rows) != len(rows):  # ascending indices of these rows: all of them or not
                raise ValueError("the graph did not attribute every row asked for")
            top = attributions.top[:, :k]
            return attributions.contributions, self._reasons(attributions.features, attributions.contributions, k, top)
        features = self.model_features(rows)
        contributions = self._contributions(features)
        return contributions, self._reasons(features, contributions, k)

    def refusal_reasons(
        self,
        rows: np.ndarray,
        predictions: Sequence[int] | np.ndarray,
        k: int = DEFAULT_REASONS,
        attributions: Attributions | None = None,
    ) -> list[list[dict[str, Any]] | None]:
        """What each result carries: the reasons of a refused row (prediction 1), None for an accepted one."""
        if 1 not in predictions:  # most answers: nothing refused, no array work at all
            return [None] * len(predictions)
        refused = np.flatnonzero(np.asarray(predictions) == 1)
        if refused.size == len(predictions):  # all refused (a single refusal): no row copy
            return list(self.explain_reasons(rows, k, attributions)[1])
        reasons: list[list[dict[str, Any]] | None] = [None] * len(predictions)
        some = None if attributions is None else attributions.of(refused)
        for i, given in zip(refused.tolist(), self.explain_reasons(rows[refused], k, some)[1], strict=True):
            reasons[i] = given
        return reasons

    def _reasons(
        self, features: np.ndarray, contributions: np.ndarray, k: int, top: np.ndarray | None = None
    ) -> list[list[dict[str, Any]]]:
        if not 1 <= k <= MAX_REASONS:
            raise ValueError(f"k must be between 1 and {MAX_REASONS}, got {k}")
        if top is None:
            top = _largest(contributions, k)
        wording = self._wording
        return [
            [wording[j].reason(value, c, features, i) for j, c, value in zip(js, cs, values, strict=True) if c > 0]
            for i, (js, cs, values) in enumerate(
                zip(top.tolist(), _at(contributions, top).tolist(), _at(features, top).tolist(), strict=True)
            )
        ]


def _at(values: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """`np.take_along_axis(values, columns, axis=1)`, one call for a single row (a sixth of the time)."""
    if len(values) == 1:
        return values[0].take(columns)
    return np.take_along_axis(values, columns, axis=1)


def _largest(values: np.ndarray, k: int) -> np.ndarray:
    """Per row, the columns of the k largest (finite) values, largest first, ties by column: exactly
    `np.argsort(-values, axis=1, kind="stable")[:, :k]`, in a tenth of its time on a batch."""
    n, width = values.shape
    if n == 1 or k >= width:  # one row: the sort is fewer calls than k rounds
        return (-values).argsort(axis=1, kind="stable")[:, :k]
    # k rounds of argmax (the first of equal values: a stable sort's order), each taking its pick out.
    rest = values.copy()
    rows = np.arange(n)
    top = np.empty((n, k), dtype=np.intp)
    for r in range(k):
        top[:, r] = picked = rest.argmax(axis=1)
        rest[rows, picked] = -np.inf
    return top


def float32_at_most(values: np.ndarray) -> np.ndarray:
    """The largest float32 <= each float64 value (beyond float32's range: its largest finite)."""
    with np.errstate(over="ignore"):
        nearest = values.astype(np.float32)
    return np.where(nearest > values, np.nextafter(nearest, np.float32(-np.inf)), nearest)


NOT_EMPLOYED_TEXT = "Not in employment (pensioner or unemployed)"


class _Wording:
    """How one model feature reads in a letter: its raw fields, its value as sent, its sentence.

    Worked out at start-up: each sentence the feature can give (per level, per side of the
    typical value); a reason then only picks one. Only a missing value reads the rest of the row.
    """

    def __init__(
        self,
        name: str,
        fields: Sequence[str],
        kind: str,
        labels: Sequence[str],
        typical: float,
        feature_names: Sequence[str],
        levels: Sequence[str] = (),
    ) -> None:
        self.name, self.kind, self.typical = name, kind, typical
        self.fields, self.labels = tuple(fields), tuple(labels)
        self.field_columns = tuple(feature_names.index(f) for f in fields)
        self.flag_column = feature_names.index(ANOMALY_FLAG)
        label = self.labels[0]
        self.missing_text = f"{label} not provided"
        above, below = _words(self.fields[0], kind)
        if kind == "ratio":
            relative = f"relative to {_lower(self.labels[1])}"
            self.above_text, self.below_text = f"{label} is {above} {relative}", f"{label} is {below} {relative}"
        else:
            self.above_text, self.below_text = f"{label} is {above}", f"{label} is {below}"
        if kind == "not_employed":
            self.above_text, self.below_text = NOT_EMPLOYED_TEXT, "In employment"  # flag 1, flag 0
        elif kind == "yes_no":
            self.above_text, self.below_text = f"{label}: yes", f"{label}: no"
        self.levels = tuple((level, f"{label}: {_YES_NO.get(level, level)}") for level in levels)

    @classmethod
    def build(cls, name: str, engineering: Engineering, spec: FeatureSpec, typical: float) -> _Wording:
        fields = engineering.sources(name)
        labels = [_label(spec[f]) for f in fields]
        names = engineering.feature_names
        if name == ANOMALY_FLAG:
            return cls(name, fields, "not_employed", labels, typical, names)
        if name in engineering.ratios:
            return cls(name, fields, "ratio", labels, typical, names)
        feature = spec[name]
        if feature.is_categorical:
            return cls(name, fields, "categorical", labels, typical, names, feature.levels)
        if feature.dtype == "int64" and feature.minimum == 0 and feature.maximum == 1:
            return cls(name, fields, "yes_no", labels, typical, names)
        return cls(name, fields, "number", labels, typical, names)

    def reason(self, value: float, contribution: float, features: np.ndarray, row: int) -> dict[str, Any]:
        """The reason this feature gives with `value` (row `row` of `features`, as the trees saw it)."""
        kind = self.kind
        if math.isnan(value):
            shown, text = self._missing(features, row)
        elif kind == "number" or kind == "ratio":
            shown = int(value) if value.is_integer() else value
            text = self.above_text if value > self.typical else self.below_text
        elif kind == "categorical":
            shown, text = self.levels[int(value)]
        else:  # yes_no, not_employed: 1 or 0
            shown, text = int(value), self.above_text if value == 1 else self.below_text
        return {
            "feature": self.name,
            "fields": [*self.fields],
            "value": shown,
            "contribution": contribution,
            "text": text,
        }

    def _missing(self, features: np.ndarray, row: int) -> tuple[Any, str]:
        """(value as sent, sentence) when the trees saw no value."""
        if self.kind == "not_employed":  # the flag is never missing; read as "not 1"
            return None, self.below_text
        if self.kind == "ratio":
            return None, self._unassessable(features, row)
        if self.name == DAYS_EMPLOYED and features[row, self.flag_column] == 1:
            return DAYS_EMPLOYED_ANOMALY, NOT_EMPLOYED_TEXT  # the client sent the placeholder
        return None, self.missing_text

    def _unassessable(self, features: np.ndarray, row: int) -> str:
        """Why a ratio is missing: a field not provided, or no current job."""
        for field, label, column in zip(self.fields, self.labels, self.field_columns, strict=True):
            if field == DAYS_EMPLOYED and features[row, self.flag_column] == 1:
                return NOT_EMPLOYED_TEXT
            if math.isnan(features[row, column]):
                return f"{label} not provided"
        return f"{self.labels[0]} relative to {_lower(self.labels[1])} cannot be assessed"


def _words(field: str, kind: str) -> tuple[str, str]:
    """How a value above the typical one reads, and one at or below it."""
    # DAYS_* are negative day counts: the duration is -value, so "above typical" means shorter.
    if field.startswith("DAYS_") and field != "DAYS_BIRTH" and kind != "ratio":
        return "short", "long"
    if field == "DAYS_BIRTH":
        return "low", "high"
    if kind == "ratio" and field.startswith("DAYS_"):  # a ratio of two durations
        return "long", "short"
    return "high", "low"


_YES_NO = {"Y": "yes", "N": "no"}


def _label(feature: Feature) -> str:
    return feature.display_name.removesuffix(" (1/0)").removesuffix(" (Y/N)")


def _lower(label: str) -> str:
    return label[:1].lower() + label[1:]
