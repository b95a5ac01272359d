"""What a scoring call needs, built once at start-up and kept on `app.state.scoring`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from contract.requests import RequestModels
from contract.scorer import Scorer
from inference.errors import ModelNotReady


@dataclass(frozen=True, slots=True)
class ScoringRuntime:
    scorer: Scorer
    requests: RequestModels
    model_version: str
    threshold: float
    max_body_bytes: int
    max_batch_body_bytes: int


def scoring_runtime(request: Request) -> ScoringRuntime:
    """The loaded runtime, or 503 while the service starts or stops.

    A plain function, not a FastAPI dependency, for the two scoring endpoints: each dependency
    costs tens of microseconds per request in FastAPI's resolver, the price of a model call.
    """
    runtime: ScoringRuntime | None = getattr(request.app.state, "scoring", None)
    if runtime is None:
        raise ModelNotReady("The model is not loaded yet")
    return runtime
