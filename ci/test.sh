#!/usr/bin/env bash
# Install b2box into .venv, bring the testbed up (Docker engine, images, HTCondor/Slurm/Apptainer worker node),
# check the code (ruff, mypy) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup-venv.sh
.venv/bin/ruff format --check b2box tests benchmarks ci docs
.venv/bin/ruff check b2box tests benchmarks ci docs
.venv/bin/mypy
status=0
python3 ci/testbed.py up || status=$?
if [ "$status" -ne 0 ]; then
    # 3: this machine cannot host the testbed (no root, no Docker); its tests are skipped, except under CI.
    if [ "$status" -ne 3 ] || [ "${CI:-}" = true ]; then
        echo "ci/test.sh: the testbed did not come up (exit $status); see /var/tmp/b2box-testbed/logs" >&2
        exit "$status"
    fi
fi
.venv/bin/python -m pytest "$@"
