"""The reasons and attributions the committed artifact gives a fixed set of applicants, kept in
`reasons_golden.json`: the explainer's output must stay byte for byte what it was when the file
was written, however its code is made faster.

    python -m tests.contract.reasons_golden      # rewrite it (only after a re-export: check the diff)

The applicants: held-out ones from the reference sample, refused and accepted, and refused ones
changed where the wording branches (a missing external score, the not-employed placeholder, a
ratio whose numerator is missing, a whole-number float); all of them valid requests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from contract.explain import Explainer
from contract.scorer import Scorer

GOLDEN = Path(__file__).with_name("reasons_golden.json")
ARTIFACT = Path(__file__).resolve().parents[2] / "models" / "credit_scoring.onnx"
K_VALUES = (1, 4, 10)
EDITS: dict[str, dict[str, Any]] = {
    "ext-source-3-missing": {"EXT_SOURCE_3": None},
    "not-employed": {"DAYS_EMPLOYED": 365243},
    "goods-price-missing": {"AMT_GOODS_PRICE": None},
    "ext-source-1-missing": {"EXT_SOURCE_1": None},
    "no-car-age": {"OWN_CAR_AGE": 0.0},
}


def outputs(scorer: Scorer, explainer: Explainer, applicants: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything the explainer gives these applicants: what the answers and records carry (from the
    graph's attributions, as the service and the batch job read them, when the artifact has them)."""
    rows = scorer.encoder.encode_many(applicants)
    probabilities, attributions = scorer.predict_attributed(rows, every=True)  # as `?explain=true` asks
    _, refused = scorer.predict_attributed(rows)  # as a plain `/predict` and `--reasons` ask
    predictions = scorer.decide(probabilities.tolist())
    contributions = explainer.explain_reasons(rows, 1, attributions)[0]
    return {
        "predictions": predictions,
        "refusal_reasons_k4": explainer.refusal_reasons(rows, predictions, 4, refused),
        **{f"explain_reasons_k{k}": explainer.explain_reasons(rows, k, attributions)[1] for k in K_VALUES},
        "reasons_k4": explainer.reasons(rows, contributions, 4),
        "attributions": [explainer.attribution(row) for row in contributions],
    }


def load() -> dict[str, Any]:
    return orjson.loads(GOLDEN.read_bytes())  # type: ignore[no-any-return]


def main() -> None:
    import pandas as pd

    from export.parity import records

    scorer = Scorer(ARTIFACT)
    scorer.load()
    spec = scorer.metadata.feature_spec
    frame = pd.read_parquet(ARTIFACT.with_name("reference_sample.parquet")).head(400)
    held_out = records(frame, spec)
    refused = [a for a, p in zip(held_out, frame["prediction"], strict=True) if p == 1]
    accepted = [a for a, p in zip(held_out, frame["prediction"], strict=True) if p == 0]
    edited = [{**applicant, **edit} for applicant in refused[24:28] for edit in EDITS.values()]
    applicants = [*refused[:24], *accepted[:8], *edited]
    golden = {
        "artifact_run_id": scorer.metadata.mlflow_run_id,
        "applicants": applicants,
        "expected": outputs(scorer, Explainer.from_metadata(scorer.metadata), applicants),
    }
    GOLDEN.write_bytes(orjson.dumps(golden) + b"\n")
    print(f"wrote {GOLDEN} ({len(applicants)} applicants)")


if __name__ == "__main__":
    main()
