#!/usr/bin/env bash
# Serve the API for local use. Without API_KEY, make one for this session and show it once.
set -euo pipefail
: "${HOST:=127.0.0.1}" "${PORT:=8000}" "${PY:=.venv/bin/python}"
if [ -z "${API_KEY:-}" ]; then
  API_KEY=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
  export API_KEY
  cat <<MSG
No API_KEY set: this session's key is

    $API_KEY

Try it (Swagger UI: http://$HOST:$PORT/docs, "Authorize" with the key):

    curl -s http://$HOST:$PORT/predict -H "x-api-key: $API_KEY" -H 'content-type: application/json' \\
         -d "\$(curl -s http://$HOST:$PORT/example)"

MSG
fi
exec "$PY" -m uvicorn inference.app:app --host "$HOST" --port "$PORT" --no-access-log
