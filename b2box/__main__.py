"""``python -m b2box`` is the ``b2box`` command."""

from b2box.cli import main

main()
