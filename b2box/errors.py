"""Errors a user can fix.

Every :class:`B2BoxError` carries a message that names the file, setting or
task at fault and says what to do; the command line prints it as one line
instead of a traceback.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from types import TracebackType


class B2BoxError(Exception):
    """An error caused by the user's input, with the fix in its message."""


class SettingsError(B2BoxError):
    """A settings file, environment variable or ``set_setting`` value is invalid."""


class TaskDefinitionError(B2BoxError, ValueError):
    """A task cannot be run as written (bad parameter value, missing output, ...)."""


class WorkflowScriptError(B2BoxError):
    """A workflow script cannot be loaded or never hands its tasks to ``process()``."""


class SettingWarning(UserWarning):
    """A setting b2box does not know (a typo?) or one that has no effect in b2box."""


class DeprecatedSettingsWarning(DeprecationWarning):
    """A setting found under b2luigi's older name (b2luigi's warning category, same name)."""


def shown_path(filename: str, line: int | None = None) -> str:
    """``file:line`` as a user reads it: relative to the current folder when the file is below it."""
    shown = filename
    if os.path.isabs(filename):
        relative = os.path.relpath(filename)
        shown = relative if not relative.startswith("..") else filename
    return f"{shown}:{line}" if line else shown


def users_line(trace: TracebackType | None, is_users: Callable[[str], bool]) -> str:
    """Where an exception came from in the user's own code: ``file:line`` of the innermost frame whose file
    ``is_users`` accepts (else of the innermost frame); empty without a traceback."""
    frames = traceback.extract_tb(trace)
    own = [frame for frame in frames if is_users(frame.filename)] or frames
    return shown_path(own[-1].filename, own[-1].lineno) if own else ""
