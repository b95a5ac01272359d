"""`python -m inference`: serve the API, configured by the environment (the container's start command).

The Docker CMD is exec-form (`["python", "-m", "inference"]`), so this process receives SIGTERM
directly and uvicorn shuts down gracefully (the lifespan's shutdown writes out the decision
record). Exec form cannot expand `$PORT`, hence this entry point, which reads HOST, PORT,
WEB_CONCURRENCY and LOG_LEVEL through `ServerSettings`. uvicorn itself reads
FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-* headers are trusted.
"""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from inference.lifespan import settings_problem
from inference.settings import ServerSettings

# Render (and `docker stop`) send SIGKILL 30 s after SIGTERM by default: finish in-flight requests
# and the record's flush well before that.
GRACEFUL_SHUTDOWN_SECONDS = 20


def main() -> None:
    try:
        server = ServerSettings()
    except ValidationError as exc:
        sys.exit(f"Refusing to start: {settings_problem(exc)}")
    uvicorn.run(
        "inference.app:app",
        host=server.host,
        port=server.port,
        workers=server.web_concurrency,
        log_level=server.log_level.lower(),
        access_log=False,  # scoring requests are in the decision record, all requests in /metrics
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )


if __name__ == "__main__":
    main()
