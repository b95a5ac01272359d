"""Reading a body under its limit from the ASGI channel (`inference.body.read_asgi_body`, the lean
door's reader): one message or many, the declared length, a disconnect."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from inference.body import read_asgi_body
from inference.errors import ClientDisconnected, PayloadTooLarge


def _channel(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def _chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]


def _read(receive: Any, declared: str | None, limit: int) -> bytes:
    return asyncio.run(read_asgi_body(receive, declared, limit))


def test_a_body_in_one_message_is_returned_as_is() -> None:
    body = b'{"AMT_CREDIT": 1}'
    assert _read(_channel(*_chunks(body)), str(len(body)), limit=len(body)) == body


def test_a_streamed_body_is_joined_from_its_chunks() -> None:
    assert _read(_channel(*_chunks(b'{"a"', b": ", b"1}")), None, limit=8) == b'{"a": 1}'


@pytest.mark.parametrize(
    ("messages", "declared"),
    [
        (_chunks(b"x" * 9), None),  # one message past the limit
        (_chunks(b"xxxx", b"xxxx", b"x"), None),  # streamed past the limit
        ([], "9"),  # the declared length alone: refused before anything is read
    ],
)
def test_past_the_limit_is_413(messages: list[dict[str, Any]], declared: str | None) -> None:
    with pytest.raises(PayloadTooLarge):
        _read(_channel(*messages), declared, limit=8)


def test_a_client_gone_mid_body_is_a_disconnect() -> None:
    receive = _channel({"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"})
    with pytest.raises(ClientDisconnected):
        _read(receive, None, limit=100)
    with pytest.raises(ClientDisconnected):
        _read(_channel({"type": "http.disconnect"}), None, limit=100)
