#!/usr/bin/env bash
# Deploy one exact image to the Render service and wait until that commit answers /health.
#
#   scripts/deploy_render.sh IMAGE_REPO GIT_SHA
#   e.g. scripts/deploy_render.sh ghcr.io/acme/credit-scoring-api 3f2c...   (CI, and rollbacks by hand)
#
# Environment:
#   RENDER_DEPLOY_HOOK_URL  required, secret: the service's deploy hook (Settings > Deploy Hook)
#   RENDER_SERVICE_URL      optional: public base URL; when set, wait until GET /health reports GIT_SHA
#   DEPLOY_TIMEOUT          seconds to wait for the new version (default 900)
#   POLL_INTERVAL           seconds between polls (default 15)
#
# The hook URL and the service URL are never printed. The image tag is the full commit SHA that CI
# pushed, and the image bakes the same SHA in (GIT_SHA), so "the new version is live" is checked,
# not assumed.
set -euo pipefail

usage() { echo "usage: $0 IMAGE_REPO GIT_SHA" >&2; exit 2; }
[ $# -eq 2 ] || usage
image_repo=$1
sha=$2
[[ $sha =~ ^[0-9a-f]{40}$ ]] || { echo "GIT_SHA must be a full 40-hex commit SHA" >&2; exit 2; }
[ -n "${RENDER_DEPLOY_HOOK_URL:-}" ] || { echo "RENDER_DEPLOY_HOOK_URL is not set" >&2; exit 2; }
timeout=${DEPLOY_TIMEOUT:-900}
interval=${POLL_INTERVAL:-15}

# Render: all of imgURL but the tag must match the service's image URL (lowercase for GHCR).
image_ref="${image_repo,,}:${sha}"
encoded=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$image_ref")
# The hook URL already carries ?key=...; append with & (or ? if someone stored it without a query).
case "$RENDER_DEPLOY_HOOK_URL" in
  *\?*) hook="${RENDER_DEPLOY_HOOK_URL}&imgURL=${encoded}" ;;
  *) hook="${RENDER_DEPLOY_HOOK_URL}?imgURL=${encoded}" ;;
esac

echo "Triggering Render deploy of ${image_ref}"
# URL via --config on stdin: it stays out of the process list; curl errors never echo it.
# --retry covers timeouts, 429 and 5xx only (not --retry-all-errors): a POST must not fan out.
response=$(printf 'url = "%s"\n' "$hook" \
  | curl --fail --silent --show-error --retry 3 --max-time 30 -X POST --config -)
deploy_id=$(python3 -c 'import json, sys; print(json.load(sys.stdin).get("deploy", {}).get("id", "?"))' \
  <<<"$response" 2>/dev/null || echo "?")
echo "Render accepted the deploy (id ${deploy_id})"

if [ -z "${RENDER_SERVICE_URL:-}" ]; then
  echo "RENDER_SERVICE_URL not set: not waiting for the new version"
  exit 0
fi

health="${RENDER_SERVICE_URL%/}/health"
deadline=$((SECONDS + timeout))
while :; do
  live=$(curl --fail --silent --max-time 10 "$health" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin).get("git_sha", ""))' 2>/dev/null || true)
  if [ "$live" = "$sha" ]; then
    echo "Commit ${sha} is live and healthy"
    exit 0
  fi
  if ((SECONDS >= deadline)); then
    echo "Timed out after ${timeout}s: /health still reports '${live:-unknown}', expected ${sha}" >&2
    exit 1
  fi
  echo "Waiting: /health reports '${live:-unknown}'"
  sleep "$interval"
done
