"""What reasons cost: the served model call alone vs the model call plus exact TreeSHAP and reasons.

Groups `explain-single` (one applicant per call, cycling through the held-out rows) and
`explain-batch1000`. Parameters: `model` (onnxruntime on the encoded row, what a request pays
today), `explain` (contract.explain.Explainer alone), `model+reasons` (both, plus the top-4
reasons, what a refused applicant's answer pays). `python -m benchmarks.report` prints the
median ratios; each call is also checked against the served score, so a fast wrong path fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from benchmarks.conftest import N_ROWS, Served
from contract.explain import Explainer
from export.explanation import log_odds

CASES = ["model", "explain", "model+reasons"]


@pytest.fixture(scope="module")
def explainer(served: Served) -> Explainer:
    return Explainer.from_metadata(served.scorer.metadata)


@pytest.fixture(scope="module")
def encoded(served: Served) -> np.ndarray:
    return served.scorer.encoder.encode_many(served.dicts)


def _calls(served: Served, explainer: Explainer, rows: np.ndarray) -> dict[str, Callable[[], Any]]:
    predict = served.scorer.predict_proba

    def model_and_reasons() -> tuple[np.ndarray, list[list[dict[str, Any]]]]:
        probabilities = predict(rows)
        _, contributions = explainer.explain(rows)
        return probabilities, explainer.reasons(rows, contributions)

    return {
        "model": lambda: predict(rows),
        "explain": lambda: explainer.explain(rows),
        "model+reasons": model_and_reasons,
    }


@pytest.mark.parametrize("case", CASES)
def test_explain_single(benchmark, served: Served, explainer: Explainer, encoded: np.ndarray, case: str) -> None:
    benchmark.group = "explain-single"
    benchmark.extra_info.update(rows=1, model=served.model.kind)
    one_row = [encoded[i : i + 1] for i in range(N_ROWS)]  # views made once, not timed
    calls = [_calls(served, explainer, row)[case] for row in one_row]
    state = [-1]

    def call() -> tuple[int, Any]:
        i = state[0] = (state[0] + 1) % N_ROWS
        return i, calls[i]()

    row, _ = benchmark(call)
    base, contributions = explainer.explain(one_row[row])
    served_log_odds = log_odds(served.scorer.predict_proba(one_row[row]))
    assert abs(base + contributions.sum() - served_log_odds[0]) <= 1e-5


@pytest.mark.parametrize("case", CASES)
def test_explain_batch1000(benchmark, served: Served, explainer: Explainer, encoded: np.ndarray, case: str) -> None:
    benchmark.group = "explain-batch1000"
    benchmark.extra_info.update(rows=N_ROWS, model=served.model.kind)
    benchmark(_calls(served, explainer, encoded)[case])
    base, contributions = explainer.explain(encoded)
    served_log_odds = log_odds(served.scorer.predict_proba(encoded))
    assert np.max(np.abs(base + contributions.sum(axis=1) - served_log_odds)) <= 1e-5
