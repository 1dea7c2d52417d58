"""b2box's version, from the installed distribution (kept apart so every layer can read it without the root)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("b2box")
except PackageNotFoundError:  # a source checkout that was not installed
    __version__ = "0.0.0+unknown"
