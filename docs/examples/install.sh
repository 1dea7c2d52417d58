#!/usr/bin/env bash
# The install commands of docs/getting-started.md. tests/test_docs.py runs them on the testbed's worker node, a
# machine without network and without b2box: pip installs from a wheelhouse there (PIP_NO_INDEX, PIP_FIND_LINKS)
# and /path/to/b2box is replaced by a copy of this repository.
set -euo pipefail

# [install]
python3 -m venv .venv && . .venv/bin/activate
pip install /path/to/b2box             # a clone of the repository; add extras as /path/to/b2box[htcondor]
b2box --version
# [/install]
