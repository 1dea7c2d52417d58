#!/usr/bin/env bash
# The testbed commands of docs/contributing.md; tests/test_docs.py runs this file (both are idempotent).
set -euo pipefail
cd "$(dirname "$0")/../.."

# [testbed]
python3 ci/testbed.py up       # Docker engine, images, worker-node container, XRootD server; waits until all answer
python3 ci/testbed.py status   # what exists and what answers (exit 0 only when everything is up)
# [/testbed]
