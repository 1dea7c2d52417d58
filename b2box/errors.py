"""Errors a user can fix.

Every :class:`B2BoxError` carries a message that names the file, setting or
task at fault and says what to do; the command line prints it as one line
instead of a traceback.
"""

from __future__ import annotations


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
