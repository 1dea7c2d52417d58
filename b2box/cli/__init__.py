"""The command lines: ``process()`` behind ``python workflow.py [flags]``, and the ``b2box`` command."""
