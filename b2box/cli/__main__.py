"""``python -m b2box.cli``: the ``b2box`` command."""

from b2box.cli.app import main

main()
