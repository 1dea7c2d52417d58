#!/usr/bin/env bash
# Install b2box into .venv and run the main example: 100 random numbers, then their average.
set -euo pipefail
cd "$(dirname "$0")/.."
# b2box alone (the test extras are not needed here); a .venv made by ci/test.sh keeps the extras it has
installed=$(sed -n 's/.*\[\(.*\)\]$/\1/p' .venv/.b2box-installed 2>/dev/null || true)
B2BOX_EXTRAS="$installed" ci/setup-venv.sh
.venv/bin/b2box run examples/average/workflow.py --workers 4 "$@"
echo "average: $(cat examples/average/results/count=100/average.txt)"
