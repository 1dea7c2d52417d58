#!/usr/bin/env bash
# Install b2box into .venv and run the main example: 100 random numbers, then their average.
set -euo pipefail
cd "$(dirname "$0")/.."
ci/setup-venv.sh
.venv/bin/b2box run examples/average/workflow.py --workers 4 "$@"
echo "average: $(cat examples/average/results/count=100/average.txt)"
