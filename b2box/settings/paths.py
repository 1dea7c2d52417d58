"""Where the workflow script lives, and how relative folders are resolved.

b2luigi resolves relative ``result_dir``/``log_dir`` settings against the
folder of the workflow script, not the current directory, so that a workflow
finds its results wherever it is started from. b2box keeps that rule.
"""

from __future__ import annotations

import os
import sys

SCRIPT_ENV_VARS = ("B2BOX_SCRIPT", "B2LUIGI_TASK_FILE")


def script_path() -> str | None:
    """The absolute path of the workflow script, or None in an interactive session."""
    for name in SCRIPT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return os.path.abspath(value)
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file and main_file.endswith(".py") and getattr(main, "__spec__", None) is None:
        return os.path.abspath(main_file)
    return None


def script_dir() -> str:
    """The folder of the workflow script; the current directory when there is none."""
    path = script_path()
    return os.path.dirname(path) if path else os.getcwd()


def map_folder(folder: str | os.PathLike[str]) -> str:
    """Resolve ``folder`` against the script's folder unless it is absolute."""
    folder = os.fspath(folder)
    folder = os.path.expanduser(folder)
    if os.path.isabs(folder):
        return folder
    return os.path.join(script_dir(), folder)
