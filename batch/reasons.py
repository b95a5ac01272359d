"""`--reasons`: each refused applicant's reasons, as the API gives them, in one Parquet column.

The reasons are the API's own: `contract.explain.Explainer.refusal_reasons` on the same float32
rows (the exact TreeSHAP tables the artifact carries), so the content, the order, the wording
and every contribution are what `/predict` answers for that applicant. Parquet has no JSON
type, so a reason's `value` (a level, a number, null) is stored as its JSON text, written by
orjson as the API writes its answers: `json.loads(value)` is the API's value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from contract.explain import DEFAULT_REASONS, MAX_REASONS, Attributions, Explainer, ExplainerUnavailable
from contract.metadata import ModelMetadata

REASONS = "reasons"
REASON_TYPE = pa.struct(
    [
        ("feature", pa.string()),
        ("fields", pa.list_(pa.string())),
        ("value", pa.string()),  # JSON text: "\"Y\"", "-1200", "0.27", "null"
        ("contribution", pa.float64()),
        ("text", pa.string()),
    ]
)
REASONS_TYPE = pa.list_(REASON_TYPE)

__all__ = ["DEFAULT_REASONS", "MAX_REASONS", "REASONS", "REASONS_TYPE", "ReasonsUnavailable", "reasons_array"]


class ReasonsUnavailable(RuntimeError):
    """`--reasons` was asked for but the artifact carries no (usable) explainer tables."""


def load_explainer(metadata: ModelMetadata) -> Explainer:
    """The artifact's explainer, or ReasonsUnavailable saying why there is none."""
    try:
        return Explainer.from_metadata(metadata)
    except ExplainerUnavailable as exc:
        raise ReasonsUnavailable(f"--reasons needs the artifact's TreeSHAP tables: {exc}") from None


def reasons_array(
    explainer: Explainer,
    rows: np.ndarray,
    predictions: np.ndarray,
    k: int,
    attributions: Attributions | None = None,
) -> pa.Array:
    """The `reasons` column for scored rows: the API's reasons where refused, null where accepted."""
    given = explainer.refusal_reasons(rows, predictions, k, attributions)
    return pa.array([None if r is None else [_as_record(reason) for reason in r] for r in given], REASONS_TYPE)


def _as_record(reason: dict[str, Any]) -> dict[str, Any]:
    return {**reason, "value": orjson.dumps(reason["value"]).decode()}
