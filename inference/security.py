"""API keys: the key ring and the x-api-key scheme.

The keys are kept only as SHA-256 digests: every candidate is compared with every key in
constant time (equal-length digests, no early exit), and nothing here can print a key. The
scoring service does the check (`ScoringService.answer`), whichever door the request took;
`api_key_header` only reads the header for the FastAPI routes and declares the security scheme
in the OpenAPI document, so Swagger's "Authorize" button fills it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable

from fastapi.security import APIKeyHeader
from pydantic import SecretStr

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


api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name="ApiKey",
    description="The key given to your team (the service accepts each key listed in its API_KEY).",
    auto_error=False,
)
"""The header's value (None when absent) for the FastAPI routes; the service judges it."""
