"""Failed-key throttling: a client address that keeps sending wrong keys is told to wait.

After `limit` failed key checks from one address within `window_s` seconds, every further
attempt from that address gets 429 with Retry-After until its window ends; other addresses,
valid keys included, are never affected (no global lock-out). Memory is bounded: at most
`max_clients` addresses are tracked, the least recently failing forgotten first.

The address is the ASGI client's: behind a proxy, uvicorn rewrites it from X-Forwarded-For
only for proxies listed in FORWARDED_ALLOW_IPS, so a client cannot pick its own address.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class FailedKeyThrottle:
    __slots__ = ("limit", "window_s", "max_clients", "_clock", "_failures")

    def __init__(
        self, limit: int, window_s: float, max_clients: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        # address -> (start of its window, failures in it); ordered by last failure
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, address: str) -> int | None:
        """Whole seconds the address must wait, or None when it may try a key."""
        entry = self._failures.get(address)
        if entry is None:
            return None
        started, count = entry
        remaining = started + self.window_s - self._clock()
        if remaining <= 0:
            del self._failures[address]
            return None
        return max(1, math.ceil(remaining)) if count >= self.limit else None

    def failed(self, address: str) -> None:
        """Count one failed key check from the address."""
        now = self._clock()
        started, count = self._failures.pop(address, (now, 0))
        if now - started >= self.window_s:
            started, count = now, 0
        self._failures[address] = (started, count + 1)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
