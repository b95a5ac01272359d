"""A request's identity, set by the observing middleware for everything inside it.

`ObservabilityMiddleware` puts one `RequestContext` in the ASGI scope of every observed
request; the scoring service reads its id and start times for the answer and the decision
record, the error handler its id for the error body.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from starlette.types import Scope

SCOPE_KEY = "credit_scoring.context"


@dataclass(slots=True)  # built on every request: not frozen (that sets each field through object.__setattr__)
class RequestContext:
    request_id: str
    started: float
    """time.perf_counter() at arrival, for latencies."""
    wall_started: float
    """time.time() at arrival, for the record's timestamp."""


def context_of(scope: Scope) -> RequestContext | None:
    """The request's context (None outside the middleware: probes, or a bare app in a test)."""
    return scope.get(SCOPE_KEY)


def request_id_of(scope: Scope) -> str | None:
    context = scope.get(SCOPE_KEY)
    return context.request_id if context is not None else None


def new_context() -> RequestContext:
    # Always our own id, never the caller's: the decision record counts one request per id.
    # An id, not a secret: no os.urandom per request.
    return RequestContext(f"{random.getrandbits(128):032x}", time.perf_counter(), time.time())
