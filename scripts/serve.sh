#!/usr/bin/env bash
# Serve the API for local use (make serve). Without API_KEY, use the key kept in .api-key (made
# once, readable by you only, git-ignored) so that any shell can read it: export API_KEY=$(cat .api-key).
set -euo pipefail
: "${HOST:=127.0.0.1}" "${PORT:=8000}" "${PY:=.venv/bin/python}" "${API_KEY_FILE:=.api-key}"
if [ -z "${API_KEY:-}" ]; then
  if [ ! -s "$API_KEY_FILE" ]; then
    (umask 077 && "$PY" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$API_KEY_FILE")
  fi
  API_KEY=$(cat "$API_KEY_FILE")
  export API_KEY
  cat <<MSG
No API_KEY set: serving with the key in $API_KEY_FILE

    $API_KEY

Try it from any shell (Swagger UI: http://$HOST:$PORT/docs, "Authorize" with the key):

    export API_KEY=\$(cat $API_KEY_FILE)
    curl -s http://$HOST:$PORT/predict -H "x-api-key: \$API_KEY" -H 'content-type: application/json' \\
         -d "\$(curl -s http://$HOST:$PORT/example)"

MSG
fi
export HOST PORT
exec "$PY" -m inference  # no access log, no server header, graceful shutdown (inference/__main__.py)
