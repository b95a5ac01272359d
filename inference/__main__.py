"""`python -m inference`: serve the API, configured by the environment (the container's start command).

The Docker CMD is exec-form (`["python", "-m", "inference"]`), so this process receives SIGTERM
directly and uvicorn shuts down gracefully (lifespan shutdown flushes the prediction log). Exec form
cannot expand `$PORT`, hence this entry point:

    HOST             bind address (default 127.0.0.1; the image sets 0.0.0.0)
    PORT             listen port (default 8000; Render sets it)
    WEB_CONCURRENCY  worker processes (default 1; each loads its own ONNX session)
    LOG_LEVEL        uvicorn's log level too (default info; the service reads it as well)
    FORWARDED_ALLOW_IPS  read by uvicorn itself: proxies whose X-Forwarded-* headers are trusted
"""

from __future__ import annotations

import os
import sys

import uvicorn

# Render (and `docker stop`) send SIGKILL 30 s after SIGTERM by default: finish in-flight requests
# and the log flush well before that.
GRACEFUL_SHUTDOWN_SECONDS = 20


def _int_env(name: str, default: int, minimum: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        sys.exit(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value


def main() -> None:
    uvicorn.run(
        "inference.app:app",
        host=os.environ.get("HOST", "127.0.0.1"),
        port=_int_env("PORT", 8000, minimum=1),
        workers=_int_env("WEB_CONCURRENCY", 1, minimum=1),
        log_level=os.environ.get("LOG_LEVEL", "info").lower(),
        access_log=False,  # scoring requests are in the prediction log, all requests in /metrics
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
