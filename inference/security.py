"""API keys: the key ring and the x-api-key scheme.

The keys are kept only as SHA-256 digests: every candidate is compared with every key in
constant time (equal-length digests, no early exit), and nothing here can print a key. Each
key has a scope (API_KEY scores, OUTCOME_API_KEY posts outcomes): `KeyGate.require` is the one
check, made by the scoring service (whichever door the request took) and the outcomes route;
`api_key_header` only reads the header for the FastAPI routes and declares the security scheme
in the OpenAPI document, so Swagger's "Authorize" button fills it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping

from fastapi.security import APIKeyHeader
from pydantic import SecretStr

from inference.errors import Forbidden, TooManyAttempts, Unauthorized
from inference.throttle import FailedKeyThrottle

API_KEY_HEADER = "x-api-key"


class KeyRing:
    """The accepted keys, as digests."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self._digests = tuple(_digest(key.get_secret_value()) for key in keys)  # none: accepts nothing

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    def accepts(self, candidate: str) -> bool:
        digest = _digest(candidate)
        accepted = False
        for known in self._digests:  # no early exit: the time does not tell which key matched
            accepted |= secrets.compare_digest(digest, known)
        return accepted


class KeyGate:
    """Which key may do what: one key ring per scope ("scoring", "outcomes"), one throttle.

    A key of another scope gets 403 (it is a real key, so it is not a failed guess); a missing
    or unknown key gets 401 and counts against its address; a throttled address gets 429
    before any key is looked at.
    """

    def __init__(
        self,
        scopes: Mapping[str, KeyRing],
        throttle: FailedKeyThrottle,
        on_failure: Callable[[], None],
        on_throttled: Callable[[], None],
    ) -> None:
        self.scopes = dict(scopes)
        self.throttle = throttle
        self._on_failure = on_failure
        self._on_throttled = on_throttled

    def require(self, scope: str, api_key: str | None, client: str | None) -> None:
        address = client or "unknown"
        retry_after = self.throttle.retry_after(address)
        if retry_after is not None:
            self._on_throttled()
            raise TooManyAttempts(retry_after)
        if api_key and self.scopes[scope].accepts(api_key):
            return
        for other, ring in self.scopes.items():
            if other != scope and api_key and ring.accepts(api_key):
                raise Forbidden(f"This key is for {other}, not for {scope}")
        self.throttle.failed(address)
        self._on_failure()
        if not api_key:
            raise Unauthorized(f"Missing API key: send it in the {API_KEY_HEADER} header")
        raise Unauthorized("Invalid API key")


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="The key given to your team (the service accepts each key listed in its API_KEY).",
    auto_error=False,
)
"""The header's value (None when absent) for the FastAPI routes; the service judges it."""
