"""What workflow authors use: tasks and their file helpers, parameter options, decorators, atomic outputs.

Everything here is re-exported by the package root (``import b2box as b2luigi``).
"""
