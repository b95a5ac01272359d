"""Extension point for `--reasons`: per-applicant reasons from `contract.explain`.

The reasons issue is building `contract/explain.py` (the same exact TreeSHAP reasons the API
serves). Until it lands, and until `require_explainer` is wired to it, `--reasons` stops the
job before Spark starts with the message below; it never writes made-up reasons.

To wire it: make `require_explainer` return the explainer built from the artifact, call it in
`batch.executor.ScoreBatches._score` on `checked.rows` beside `predict_proba`, and add the
reasons column to `batch.executor.output_schema` and to the scored output in `batch.job`.
"""

from __future__ import annotations

import importlib.util
from typing import NoReturn


class ReasonsUnavailable(RuntimeError):
    """`--reasons` was asked for but this build cannot produce reasons yet."""


def require_explainer() -> NoReturn:
    """Raise ReasonsUnavailable, saying why; returns the explainer once `contract.explain` is wired."""
    if importlib.util.find_spec("contract.explain") is None:
        raise ReasonsUnavailable(
            "--reasons is not available yet: it needs contract/explain.py (the reasons issue), "
            "which has not landed; score without --reasons"
        )
    raise ReasonsUnavailable(
        "--reasons is not available yet: contract/explain.py exists but the batch job is not wired "
        "to it (see batch/reasons.py); score without --reasons"
    )
