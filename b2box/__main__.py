"""``python -m b2box`` is the ``b2box`` command."""

from b2box.cli.app import main

main()
