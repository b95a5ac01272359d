"""Reading a request body under a size limit: 413 before parsing, whichever door reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.types import Message, Receive

from inference.errors import ClientDisconnected, PayloadTooLarge


async def read_limited(chunks: AsyncIterator[bytes], declared_length: str | None, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes: from the
    declared Content-Length before reading anything, else while streaming (chunked uploads)."""
    _refuse_declared(declared_length, limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


async def read_asgi_body(receive: Receive, declared_length: str | None, limit: int) -> bytes:
    """`read_limited` straight from the ASGI channel (the lean door): a body that came in one
    message, as a client's JSON usually does, is taken as is; a streamed one is read chunk by chunk."""
    _refuse_declared(declared_length, limit)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"Body exceeds the limit of {limit} bytes")
        return body
    return await read_limited(asgi_chunks(receive, first=message), None, limit)


async def asgi_chunks(receive: Receive, first: Message | None = None) -> AsyncIterator[bytes]:
    """The body's chunks straight from the ASGI `receive` channel (from `first`, if already received)."""
    message = first if first is not None else await receive()
    while True:
        if message["type"] != "http.request":
            raise ClientDisconnected("The client disconnected before sending the whole body")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
        message = await receive()


def _refuse_declared(declared_length: str | None, limit: int) -> None:
    if declared_length is not None and declared_length.isdigit() and int(declared_length) > limit:
        raise PayloadTooLarge(f"Body of {declared_length} bytes exceeds the limit of {limit} bytes")
