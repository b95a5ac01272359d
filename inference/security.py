"""The API-key check for scoring calls.

`require_api_key` is a FastAPI `APIKeyHeader`, so the OpenAPI document carries an API-key
security scheme and Swagger's "Authorize" button fills the header; it also does the check
itself, so the router pays for one dependency instead of a check depending on the header
scheme (each level of FastAPI dependency costs tens of microseconds per request here).
The keys are kept only as SHA-256 digests: every candidate is compared with every key in
constant time (equal-length digests, no early exit), and nothing here can print a key.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from inference.errors import ModelNotReady, Unauthorized

API_KEY_HEADER = "x-api-key"


class KeyRing:
    """The accepted keys, as digests."""

    __slots__ = ("_digests",)

    def __init__(self, keys: Iterable[SecretStr]) -> None:
        self._digests = tuple(_digest(key.get_secret_value()) for key in keys)
        if not self._digests:
            raise ValueError("a key ring needs at least one key")

    def __repr__(self) -> str:
        return f"KeyRing({len(self._digests)} keys)"

    def accepts(self, candidate: str) -> bool:
        digest = _digest(candidate)
        accepted = False
        for known in self._digests:  # no early exit: the time does not tell which key matched
            accepted |= secrets.compare_digest(digest, known)
        return accepted


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class ApiKeyCheck(APIKeyHeader):
    """The x-api-key security scheme, checking the key against the app's key ring."""

    async def __call__(self, request: HTTPConnection) -> None:  # type: ignore[override]
        keyring: KeyRing | None = getattr(request.app.state, "keyring", None)
        if keyring is None:
            raise ModelNotReady("The service is starting or stopping")
        api_key = request.headers.get(API_KEY_HEADER)
        if not api_key:
            raise Unauthorized(f"Missing API key: send it in the {API_KEY_HEADER} header")
        if not keyring.accepts(api_key):
            raise Unauthorized("Invalid API key")


require_api_key = ApiKeyCheck(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="The key given to your team (the service accepts each key listed in its API_KEY).",
    auto_error=False,
)
"""Router dependency: 401 (in the service's error shape) unless x-api-key holds a configured key."""
