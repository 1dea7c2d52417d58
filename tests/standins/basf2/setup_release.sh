# Source this to "set up" the stand-in basf2 release (as b2setup sets up a real one): BELLE2_RELEASE, PATH and
# PYTHONPATH. The release is $STANDIN_RELEASE, else release-08-01-00. (No positional argument: a file sourced
# without arguments sees its caller's.)
b2box_standin_basf2="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BELLE2_RELEASE="${STANDIN_RELEASE:-release-08-01-00}"
export PATH="$b2box_standin_basf2/bin:$PATH"
export PYTHONPATH="$b2box_standin_basf2/python${PYTHONPATH:+:$PYTHONPATH}"
