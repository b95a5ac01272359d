"""Reading a request body under a size limit: 413 before parsing, whichever door reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Receive

from inference.errors import ClientDisconnected, PayloadTooLarge


async def read_limited(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes: from the
    declared Content-Length before reading anything, else while streaming (chunked uploads)."""
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise PayloadTooLarge(f"Body of {declared_length} bytes exceeds the limit of {limit} bytes")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body's chunks straight from the ASGI `receive` channel."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnected("The client disconnected before sending the whole body")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
