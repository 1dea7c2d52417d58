"""A workflow script that cannot run, said in one line: where (file and line) and what, as a compiler would.

A syntax error, a missing import or an exception at the script's top level is the user's to fix before anything
runs, so ``b2box run`` reports it like any other pre-run error (exit 2), not as a 30-line traceback that CI
cannot tell from a failed task; ``--verbose`` adds the traceback.
"""

from __future__ import annotations

import os

from b2box import b2luigi_names
from b2box.errors import shown_path, users_line


def _syntax(error: SyntaxError) -> str:
    text = (error.text or "").rstrip("\n")
    where = shown_path(error.filename or "<unknown>", error.lineno)
    if not text.strip():
        return f"{where}: {error.msg}"
    stripped = text.lstrip()
    caret = ""
    if error.offset:
        column = max(0, error.offset - 1 - (len(text) - len(stripped)))
        caret = "\n    " + " " * column + "^"
    return f"{where}: {error.msg}\n    {stripped}{caret}"


def script_error(error: Exception, script: str) -> str:
    """One line (a syntax error: three, with the offending line and a caret) naming where ``error`` was raised:
    the innermost frame of the script or of a module of the user's (not b2box's, not Python's)."""
    if isinstance(error, SyntaxError):
        return _syntax(error) + "\nFix the script and run again."
    where = users_line(error.__traceback__, lambda filename: _is_users(filename, script)) or shown_path(script)
    message = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    instead = b2luigi_names.hint(error) if isinstance(error, ImportError) else ""
    message += f" ({instead})" if instead else ""
    return f"{where}: {message} (the script stopped before it called process(); --verbose shows the traceback)"


def _is_users(filename: str, script: str) -> bool:
    """Frames of the script and of modules beside it, not of b2box, runpy or installed packages."""
    if filename == script:
        return True
    folder = os.path.dirname(script)
    return filename.startswith(folder + os.sep) and "site-packages" not in filename and "/b2box/" not in filename
