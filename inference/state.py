"""What the lifespan loads, as one typed object on `app.state`.

`create_app` sets `app.state.loaded = None`; the lifespan replaces it with a `Loaded` once the
model, the keys and the record writer are ready, and puts None back when it stops. Ready means
"it is there": every reader goes through `loaded_of`, no attribute fishing.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from inference.decisions import DecisionRecorder
from inference.metrics import Metrics
from inference.security import KeyRing
from inference.service import ScoringService
from inference.settings import Settings


@dataclass(frozen=True, slots=True)
class Loaded:
    settings: Settings
    service: ScoringService
    recorder: DecisionRecorder
    metrics_keyring: KeyRing | None
    """METRICS_API_KEY's key ring; None: /metrics is open."""


def loaded_of(app: Starlette) -> Loaded | None:
    loaded: Loaded | None = app.state.loaded
    return loaded


def metrics_of(app: Starlette) -> Metrics:
    metrics: Metrics = app.state.metrics
    return metrics
