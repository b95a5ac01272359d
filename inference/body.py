"""Reading a request body under a size limit (413 before parsing).

Kept apart from the routes so that light processes (the benchmarks' no-op floor) can use the
same logic without importing the model runtime.
"""

from __future__ import annotations

from starlette.requests import Request

from inference.errors import PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed `limit` bytes: from the
    declared Content-Length before reading anything, else while streaming (chunked uploads)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
