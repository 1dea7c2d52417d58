#!/usr/bin/env bash
# Install b2box into .venv, check the code (ruff, mypy) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup-venv.sh
.venv/bin/ruff check b2box tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
