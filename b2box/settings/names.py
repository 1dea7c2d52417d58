"""The names of settings: which ones b2box knows, and the warnings (or, strict, errors) about the others.

Kept apart from the settings model (:mod:`b2box.settings.model`, pydantic) so that checking the names of settings,
and values that need no model to be seen right (:mod:`b2box.settings.plain_values`), costs no import of pydantic:
a rerun with nothing to do took a fifth of its time making the model to check a ``set_setting`` of a folder.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from b2box.errors import SettingsError, SettingWarning
from b2box.settings import declared
from b2box.settings.sources import CUSTOM_SECTION


def known_settings() -> Mapping[str, declared.Declared]:
    """Every setting b2box and b2luigi know, by name."""
    return declared.all_settings()


_FREE_PREFIXES = ("gbasf2_", "_")  # other gbasf2 options pass unchecked; "_" marks b2luigi internals
# B2BOX_* variables that are b2box's own plumbing, not settings
PLUMBING_VARIABLES = ("settings", "script", "job_id", "job_server", "root")

_JOB_COMMAND = (
    "b2box starts every job through its wrapper, which runs the workflow script itself: there is no "
    "batch-runner command line to shape"
)
# b2luigi settings b2box accepts but does not read, and why: setting one gets a warning saying so
NO_EFFECT: dict[str, str] = {
    "executable_is_entrypoint": _JOB_COMMAND,
    "batch_runner_cli": _JOB_COMMAND,
    "task_cmd_additional_args": _JOB_COMMAND,
    "add_filename_to_cmd": _JOB_COMMAND,
    "apptainer_mount_defaults": "b2box always binds the result, log and working folders a job needs",
    "batch_status_cache_ttl": (
        "b2box asks the batch system about all of its jobs in one query per poll (batch_poll_interval), "
        "so there is no per-job status cache to age"
    ),
    "n_download_threads": "b2box downloads remote inputs one after another, when run() asks for them",
    "direct_mode": "it belongs to b2luigi's own command line (b2luigi show/run), which `b2box` replaces",
    "shell": "b2box's job wrapper is a bash script on every system",
    "calculate_statistics": "b2box's gbasf2 steering file does not ask basf2 for module statistics",
}


_python_format = warnings.formatwarning


def _format_warning(message: Any, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """Setting warnings are about the user's files and names, not a line of b2box: shown as one plain line."""
    if issubclass(category, SettingWarning):
        return f"b2box: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning


def _resembles(key: str, known: Any = None) -> str:
    import difflib  # (only for a name that is wrong)

    known = known_settings() if known is None else known
    hint = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def is_unknown(key: str) -> bool:
    """Whether ``key`` is neither a setting b2box or b2luigi knows nor a name left free on purpose."""
    return declared.find(key) is None and not key.startswith(_FREE_PREFIXES)


def report_unknown(source: str, key: str, strict: bool, shown: str | None = None, known: Any = None) -> None:
    """A warning (an error under ``strict_settings``) naming the source, the key and the known key it resembles."""
    message = (
        f"{source}: unknown setting '{shown or key}'{_resembles(shown or key, known)}; b2box does not read it, "
        f"get_setting('{key}') does. Fix the name, or put settings of your own under \"{CUSTOM_SECTION}\""
    )
    if strict:
        raise SettingsError(f"{message}. (strict_settings is on: unknown settings are errors.)")
    warnings.warn(
        f"{message}; strict_settings = true (or --strict-settings) makes this an error.", SettingWarning, stacklevel=4
    )


def report_no_effect(source: str, key: str) -> None:
    """Setting one of b2luigi's settings that b2box accepts but does not read gets a warning saying why."""
    if key in NO_EFFECT:
        warnings.warn(
            f"{source}: setting '{key}' has no effect in b2box: {NO_EFFECT[key]}.", SettingWarning, stacklevel=4
        )


def check_names(source: str, keys: Any, strict: bool) -> None:
    """Warn about (or, strict, refuse) every unknown key among ``keys``, and about keys without effect."""
    for key in keys:
        if is_unknown(key):
            report_unknown(source, key, strict)
        else:
            report_no_effect(source, key)
