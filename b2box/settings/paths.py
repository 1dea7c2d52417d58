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
    named = _named_script()
    return os.path.abspath(named) if named else None


def _named_script() -> str | None:
    """The workflow script as it was named (by a variable, or as ``__main__``), perhaps relative."""
    for name in SCRIPT_ENV_VARS:
        value = os.environ.get(name)
        if value:
            return value
    main = sys.modules.get("__main__")
    main_file = getattr(main, "__file__", None)
    if main_file and main_file.endswith(".py") and getattr(main, "__spec__", None) is None:
        return str(main_file)
    return None


_folders_of_scripts: dict[str, str] = {}  # an absolute script path -> its folder


def script_dir() -> str:
    """The folder of the workflow script; the current directory when there is none. Asked for every task's folders:
    the folder of a script named by an absolute path (``__main__``'s always is) is worked out once."""
    named = _named_script()
    if not named:
        return os.getcwd()
    if not os.path.isabs(named):  # (it depends on the current directory)
        return os.path.dirname(os.path.abspath(named))
    found = _folders_of_scripts.get(named)
    if found is None:
        found = _folders_of_scripts[named] = os.path.dirname(os.path.abspath(named))
    return found


def map_folder(folder: str | os.PathLike[str]) -> str:
    """Resolve ``folder`` against the script's folder unless it is absolute."""
    folder = os.fspath(folder)
    folder = os.path.expanduser(folder)
    if os.path.isabs(folder):
        return folder
    return os.path.join(script_dir(), folder)
