#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv and install b2box into it.
# Used by the README commands and by CI; safe to run again (it installs only when pyproject.toml changed).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    echo "b2box needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)." >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        # Debian ships venv separately; install it when we may.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            rm -rf .venv && "$PYTHON" -m venv .venv
        else
            echo "python3 -m venv failed: install the python3-venv package (apt-get install python3-venv)." >&2
            exit 2
        fi
    fi
fi
# b2box is installed in editable mode: code changes need no reinstall, only a changed pyproject.toml does.
# B2BOX_EXTRAS chooses the extras (default: test, what ci/test.sh needs; ci/example.sh needs none).
extras=${B2BOX_EXTRAS-test}
stamp="$(sha256sum pyproject.toml | cut -d' ' -f1) [$extras]"
if [ "$(cat .venv/.b2box-installed 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    echo "$stamp" > .venv/.b2box-installed
fi
