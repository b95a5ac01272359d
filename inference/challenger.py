"""The challenger: a second model scored on the same applicants, never deciding anything.

Every applicant the champion scores is also scored by the challenger (CHALLENGER_MODEL_PATH),
right after the champion's own call: the rows are reused when both models read the same
feature spec, encoded again otherwise. Its scores go into the decision record beside the
champion's, for the champion-vs-challenger comparison in monitoring; the answer never shows
them. A challenger that fails is counted and logged, and the request is answered as if there
were none.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from contract.scorer import Scorer

logger = logging.getLogger(__name__)


class ShadowScores(NamedTuple):
    model_version: str
    probabilities: list[float]
    predictions: list[int]
    latency_s: float


class Challenger:
    def __init__(self, scorer: Scorer, champion: Scorer, on_failure: Callable[[], None]) -> None:
        self.scorer = scorer
        self.model_version = scorer.metadata.model_version
        self.threshold = scorer.metadata.threshold
        self.same_rows = scorer.metadata.feature_spec == champion.metadata.feature_spec
        self._on_failure = on_failure
        self._failing = False

    def shadow(self, rows: np.ndarray, applicants: Sequence[Mapping[str, Any]]) -> ShadowScores | None:
        """The challenger's scores for the champion's applicants, or None if it failed."""
        started = time.perf_counter()
        try:
            own_rows = rows if self.same_rows else self.scorer.encoder.encode_many(applicants)
            probabilities: list[float] = self.scorer.predict_proba(own_rows).tolist()
        except Exception as exc:  # the challenger must never fail a request
            self._on_failure()
            if not self._failing:
                self._failing = True
                logger.error("challenger %s failed (%s); answering without it", self.model_version, type(exc).__name__)
            return None
        self._failing = False
        threshold = self.threshold
        predictions = [int(p >= threshold) for p in probabilities]
        return ShadowScores(self.model_version, probabilities, predictions, time.perf_counter() - started)
