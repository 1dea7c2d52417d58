# Sourced before every task of the workflow (for basf2: source /cvmfs/belle.cern.ch/tools/b2setup release-08-02-04).
export ANALYSIS_SETUP="done by setup.sh"
