#!/usr/bin/env bash
# Build the b2box Docker image (top-level Dockerfile) from a local wheelhouse: ci/build-image.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-b2box:dev}
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python
rm -rf dist/wheelhouse
"$python" -m pip wheel --quiet --wheel-dir dist/wheelhouse .
docker build --quiet --tag "$tag" . >/dev/null
echo "$tag"
