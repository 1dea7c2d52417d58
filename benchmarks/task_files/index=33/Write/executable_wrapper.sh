#!/bin/bash
set -e
cd /work/main/benchmarks
echo 'Working in the folder:'; pwd
echo 'Current environment:'; env
echo 'Will now execute the program'
exec /work/main/benchmarks/.venv-b2luigi/bin/python flat_workflow.py --batch-runner --task-id Write_33_63f137ec42