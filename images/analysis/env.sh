# Sourced by jobs that set env_script to this file (inside the image: /opt/analysis/env.sh).
export ANALYSIS_READY=1
