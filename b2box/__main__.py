"""``python -m b2box`` is the ``b2box`` command; ``python -m b2box SCRIPT.py ARGS`` is ``b2box run SCRIPT.py ARGS``
(b2luigi's module names included: an unmodified b2luigi script runs)."""

import sys

from b2box.cli.app import main

if len(sys.argv) > 1 and sys.argv[1].endswith(".py"):
    sys.argv.insert(1, "run")
main()
