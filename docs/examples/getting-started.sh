#!/usr/bin/env bash
# The commands of docs/getting-started.md, in order (the page shows them from here, between the [markers]).
# tests/test_docs.py runs this script in an empty folder with b2box on PATH: it must keep working.
set -euo pipefail

# [first-workflow]
b2box init analysis               # writes analysis/workflow.py and analysis/settings.json
cd analysis
b2box run workflow.py --workers 2
b2box status workflow.py
# [/first-workflow]

# [again]
b2box run workflow.py             # everything is complete: nothing runs, exit status 0
b2box run workflow.py --dry-run   # exit status 0: nothing is pending (1 when something is)
# [/again]

# [container]
docker image inspect python:3.11-slim-bookworm >/dev/null 2>&1 || docker pull python:3.11-slim-bookworm
cat > settings.json <<'JSON'
{
  "result_dir": "results",
  "log_dir": "logs",
  "image": "python:3.11-slim-bookworm"
}
JSON
b2box remove workflow.py Simulate --yes    # outputs of Simulate and of everything made from them
b2box run workflow.py --workers 2          # now every task runs in the image
b2box provenance workflow.py Merge         # which image (and digest) each task ran in
# [/container]

# [batch]
b2box remove workflow.py Simulate --yes
b2box run workflow.py --batch              # each task a batch job, still in the image
b2box status workflow.py
# [/batch]
