#!/usr/bin/env bash
# `make lock`: compile every human-edited requirements-NAME.txt into requirements-NAME.lock, every
# package (transitive ones too) pinned to one version with the sha256 of each of its files.
#
# Why uv (`uv pip compile`) rather than pip-tools: one *universal* resolution covers every platform
# marker (uvloop off Windows, appnope on macOS, ...), so the same lock installs on the Linux image,
# CI and a developer's Mac; it hashes every file of every pin and takes seconds, where pip-compile
# resolves for the running interpreter only and needs minutes for this set. Installing needs no uv:
# the locks are plain requirements files for `pip install --require-hashes -r ...`.
#
# One pin per package across all locks: requirements-dev.txt includes every other set (train,
# which includes serve; batch; ...), so it is resolved first, then each other set is resolved
# under the dev lock as constraints. The serve lock is therefore the dev lock's pins restricted
# to what serving needs. A new requirements-NAME.txt is locked the same way with no change here:
# add it, include it from requirements-dev.txt (`-r requirements-NAME.txt`), run `make lock`.
#
# Existing pins are kept (only what a .txt changed moves); UPGRADE=1 re-resolves everything.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
[ -x "$uv" ] || uv=$(command -v uv) || { echo "uv not found: make .venv/.dev-installed (or set UV=...)" >&2; exit 2; }

# --no-strip-extras: `pandas[parquet]==...` as evidently asks for it; pip's hash mode refuses
# a dependency with an extra that the lock lists only without it.
options=(--quiet --universal --python-version 3.11 --generate-hashes --no-strip-extras --custom-compile-command "make lock")
[ "${UPGRADE:-}" = 1 ] && options+=(--upgrade)

echo "requirements-dev.txt -> requirements-dev.lock"
"$uv" pip compile "${options[@]}" requirements-dev.txt -o requirements-dev.lock
for input in requirements-*.txt; do
  [ "$input" = requirements-dev.txt ] && continue
  echo "$input -> ${input%.txt}.lock (pins of requirements-dev.lock)"
  "$uv" pip compile "${options[@]}" --constraints requirements-dev.lock "$input" -o "${input%.txt}.lock"
done
