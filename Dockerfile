# Scoring service image: requirements-serve.lock + inference/ + contract/ + the ONNX model, nothing else.
#
# No `# syntax=` line: nothing here needs a newer Dockerfile frontend, and naming one makes
# BuildKit download a frontend image before every build.
#
# Base: the official CPython 3.11 slim image on Debian 12 (bookworm, the same Debian and glibc as
# the dev/CI machines), pinned to a patch tag so rebuilds are reproducible and upgrades are a
# reviewed one-line change. It is named once, in a plain FROM, because Dependabot (see
# .github/dependabot.yml) cannot update an image given through ARG. For a byte-exact pin, append the
# digest printed by `docker buildx imagetools inspect python:3.11.16-slim-bookworm` as @sha256:...
FROM python:3.11.16-slim-bookworm AS base

# ---- builder: a self-contained virtual environment in /opt/venv -------------------------------
FROM base AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

COPY requirements-serve.lock /tmp/requirements-serve.lock
# The lock pins every package, transitive ones too, with the sha256 of each file (`make lock`):
# --require-hashes refuses anything else, so a rebuild installs the very same bytes. Wheels only:
# every serve dependency ships manylinux wheels, so no compiler is ever needed and a missing wheel
# fails the build loudly instead of silently compiling. pip and setuptools are removed from the
# venv afterwards: nothing installs at run time, and they only add CVE surface.
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: --require-hashes -r /tmp/requirements-serve.lock \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

# ---- runtime: the venv, the code, the model; runs as an unprivileged user ----------------------
FROM base AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:${PATH}" \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=1 \
    MODEL_PATH=/app/models/credit_scoring.onnx \
    PREDICTION_LOG_DIR=/app/logs \
    LOG_LEVEL=INFO \
    HOME=/home/app

# Fixed numeric ids so volume permissions and `USER` checks do not depend on name lookups.
# A real, writable HOME: onnxruntime keeps its telemetry device id in $HOME/.cache (or
# $XDG_CACHE_HOME) and warns "Failed to persist telemetry device ID" at every start without one.
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
            --shell /usr/sbin/nologin app

WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
# Code and model stay root-owned (read-only for the app user); only the log directory and HOME
# are writable. contract/ is what serving shares with the other stages (spec, encoder, scorer).
COPY contract/ /app/contract/
COPY inference/ /app/inference/
COPY models/credit_scoring.onnx /app/models/credit_scoring.onnx
RUN mkdir /app/logs && chown app:app /app/logs

# Baked in by CI (--build-arg GIT_SHA=$GITHUB_SHA) so /health can say which commit is live. Declared
# last: a new commit changes only this metadata, every layer above stays cached and shared.
ARG GIT_SHA=unknown
ENV GIT_SHA=${GIT_SHA}
# CI adds the repository-specific OCI labels (source, url, created, version) from
# docker/metadata-action; `source` is what links the GHCR package to the repository.
LABEL org.opencontainers.image.title="credit-scoring-api" \
      org.opencontainers.image.description="Default-risk scoring API (FastAPI + onnxruntime)" \
      org.opencontainers.image.revision="${GIT_SHA}"

USER 10001:10001
EXPOSE 8000

# Liveness for `docker run`/compose (Render uses healthCheckPath instead). Python stdlib: the slim
# image has no curl. urlopen raises on connection errors and non-2xx answers, so exit status is 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]

# Exec form: python is PID 1 and receives SIGTERM itself, so uvicorn shuts down gracefully and the
# prediction-log writer flushes. `python -m inference` reads HOST/PORT/WEB_CONCURRENCY (Render sets PORT).
STOPSIGNAL SIGTERM
CMD ["python", "-m", "inference"]
