"""Settings: one typed model, one lookup chain.

A setting is looked up, first hit wins, in

1. the task: an attribute or property of that name on the task or its classes,
2. ``set_setting(key, value)`` in the script,
3. ``settings.json`` files: the script's folder and its parents (nearest
   first), then the working directory and its parents (b2luigi's place) for
   files not yet found; or only the file named by ``B2BOX_SETTINGS`` or
   ``B2LUIGI_SETTINGS_JSON``, which replaces the search as in b2luigi,
4. environment variables ``B2BOX_<NAME>`` (``B2BOX_RESULT_DIR`` ...),
5. the default: the caller's, else the model's.

Settings files and environment variables are validated against
:class:`~b2box.settings.model.SettingValues` (pydantic) the first time they are read, so a wrong
type stops the run before any task starts, with the file, the key and what
was expected; a value of exactly its setting's plain type (a folder as text) is
seen right without making the model (:mod:`b2box.settings.plain_values`).
Keys of the user's own are kept (``get_setting`` reads them) with a warning
naming the known key they resemble; ``strict_settings`` makes them an error.
Files are read once per run, so that every task of a run and every job
sees the same settings: a job gets the submitter's file contents in its
``job.json`` instead of reading files that may have changed since. Dicts and
lists handed out are copies: b2box never mutates what ``set_setting`` was
given, and one task cannot leak a change into another.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from b2box.errors import DeprecatedSettingsWarning
from b2box.settings import declared, general, plain_values
from b2box.settings.names import check_names
from b2box.settings.sources import CUSTOM_SECTION, raw_environment_values, read_settings_file, settings_file_paths

# b2luigi's sentinel for "no default": returned as is when passed as default.
_no_value = object()
_MISSING = MISSING = object()
_generation = 0  # changes whenever a source may have changed; resolved task settings older than it are stale


def generation() -> int:
    """A number that changes whenever ``set_setting``, ``clear_setting`` or a reload may have changed a value."""
    return _generation


def _changed() -> None:
    global _generation
    _generation += 1


STRICT_SETTINGS = "strict_settings"


def _strict(files: list[tuple[str, Any]]) -> bool:
    """Whether unknown keys are errors: ``strict_settings`` from set_setting, a file or B2BOX_STRICT_SETTINGS."""
    if STRICT_SETTINGS in _global_settings:
        return bool(_global_settings[STRICT_SETTINGS])
    for _, data in files:
        if isinstance(data, dict) and STRICT_SETTINGS in data:
            return bool(data[STRICT_SETTINGS])
    return str(raw_environment_values().get(STRICT_SETTINGS, "")).lower() in ("1", "true", "yes")


def _read_files() -> list[tuple[str, dict[str, Any]]]:
    """Every settings file in effect; on the submitting side validated (errors name the file and the key)."""
    files = [(path, read_settings_file(path)) for path in settings_file_paths()]
    if not _validating:
        return [(path, data if isinstance(data, dict) else {}) for path, data in files]
    strict = _strict(files)
    return [(path, data if plain_values.checked_file(path, data, strict) else _validated(path, data, strict))
            for path, data in files]  # fmt: skip


def _validated(path: str, data: Any, strict: bool) -> dict[str, Any]:
    from b2box.settings.model import validate_file_content

    return validate_file_content(path, data, strict)


def _environment_values(files: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    if not _validating:
        return raw_environment_values()
    if plain_values.no_setting_variables():  # nothing for pydantic-settings to read: it is not even imported
        return {}
    from b2box.settings.model import environment_values

    return environment_values(_strict(files))


_validating = True


def validating() -> bool:
    """False inside a job, where every source was validated at submission (and pydantic may be missing)."""
    return _validating


def warn_deprecated(old_key: str, key: str) -> None:
    """The warning for a value found under b2luigi's older name of a setting."""
    warnings.warn(
        f"The setting '{old_key}' is deprecated; use '{key}' instead.", DeprecatedSettingsWarning, stacklevel=3
    )


def trust_validated_sources() -> None:
    """Inside a job: settings were validated at submission; read them without pydantic."""
    global _validating
    _validating = False
    reload_settings()


# ----------------------------------------------------------------------------------------------------
# The lookup chain


@dataclass
class _Layers:
    files: list[tuple[str, dict[str, Any]]]
    environment: dict[str, Any]


_global_settings: dict[str, Any] = {}
_layers: _Layers | None = None
_pinned_files: list[tuple[str, dict[str, Any]]] | None = None  # a job's: the submitter's files, as they were


def reload_settings() -> None:
    """Forget cached files and environment; the next lookup reads and validates them again."""
    global _layers
    _layers = None
    _changed()


def pin_settings_files(files: list[tuple[str, dict[str, Any]]]) -> None:
    """Inside a job: use the settings files' contents the submitter read instead of reading files here."""
    global _pinned_files
    _pinned_files = [(str(path), dict(data)) for path, data in files]
    reload_settings()


def settings_files() -> list[tuple[str, dict[str, Any]]]:
    """The settings files in effect and their contents, in lookup order (handed to every job)."""
    return [(path, dict(data)) for path, data in _current_layers().files]


def validate_settings() -> None:
    """Read every settings file and ``B2BOX_*`` variable now, failing on the first bad one; under
    ``strict_settings`` also on an unknown name given to ``set_setting`` before strictness was known."""
    reload_settings()
    files = _current_layers().files
    if _validating and _strict(files):
        for key in _global_settings:
            check_names(f"set_setting('{key}')", [key], strict=True)


def _current_layers() -> _Layers:
    global _layers
    if _layers is None:
        files = _read_files() if _pinned_files is None else _pinned_files
        _layers = _Layers(files=files, environment=_environment_values(files))
    return _layers


def settings_sources() -> list[str]:
    """The settings files in effect, for ``b2box info``."""
    return [path for path, _ in _current_layers().files]


def _task_value(key: str, task: object) -> Any:
    if key in getattr(task, "__dict__", {}):
        return getattr(task, key)
    for cls in type(task).__mro__:
        if key in cls.__dict__:
            return getattr(task, key)
    return _MISSING


TASK, SET_SETTING, ENVIRONMENT = "task", "set_setting", "environment"


def find(key: str, task: object | None = None) -> tuple[Any, str]:
    """``(value, origin)`` of ``key``: origin is ``"task"``, ``"set_setting"``, a settings file's path or
    ``"environment"``; ``(MISSING, "")`` when nothing defines it. Values are not copied."""
    if task is not None:
        value = _task_value(key, task)
        if value is not _MISSING:
            return value, TASK
    if key in _global_settings:
        return _global_settings[key], SET_SETTING
    layers = _current_layers()
    for path, data in layers.files:
        if key in data:
            return data[key], path
        custom = data.get(CUSTOM_SECTION)
        if isinstance(custom, dict) and key in custom:
            return custom[key], path
    if key in layers.environment:
        return layers.environment[key], ENVIRONMENT
    return _MISSING, ""


def _lookup(key: str, task: object | None) -> Any:
    return find(key, task)[0]


def copied(value: Any) -> Any:
    """A deep copy of a dict, list or set (so nobody mutates what ``set_setting`` was given); others as they are."""
    return copy.deepcopy(value) if isinstance(value, (dict, list, set)) else value


def get_setting(
    key: str,
    default: Any = None,
    task: object | None = None,
    deprecated_keys: list[str] | None = None,
) -> Any:
    """The value of setting ``key`` (see the module docstring for the order).

    Raises ``ValueError`` when nothing defines it and there is no default,
    as b2luigi does.
    """
    value = _lookup(key, task)
    if value is _MISSING:
        for old_key in deprecated_keys or ():
            value = _lookup(old_key, task)
            if value is not _MISSING:
                warnings.warn(
                    f"The setting '{old_key}' is deprecated; use '{key}' instead.",
                    DeprecatedSettingsWarning,
                    stacklevel=2,
                )
                break
    if value is not _MISSING:
        return copied(value)
    if default is not None:
        return default
    known_default = model_default(key)
    if known_default is not None:
        return copied(known_default)
    raise ValueError(f"No settings found for {key}! Set it with set_setting('{key}', ...) or in settings.json.")


def model_default(key: str) -> Any:
    """The declared default of ``key`` (the same in a job, which has no pydantic), or None for unknown keys."""
    return declared.default_of(key)


_ = general  # imported for its declarations: the defaults of the settings every task has


def set_setting(key: str, value: Any) -> None:
    """Set ``key`` for every task that does not define it itself (the object is kept, never changed)."""
    if _validating:
        strict = bool(value) if key == STRICT_SETTINGS else _strict(_layers.files if _layers else [])
        if plain_values.plainly_valid(key, value):
            check_names(f"set_setting('{key}')", [key], strict)
        else:
            from b2box.settings.model import check_value

            check_value(key, value, strict=strict)
    _global_settings[key] = value
    _changed()


def clear_setting(key: str) -> None:
    """Forget a value given to :func:`set_setting`; unknown keys are ignored."""
    _global_settings.pop(key, None)
    _changed()


def iter_global_settings() -> Iterator[tuple[str, Any]]:
    """The values given to :func:`set_setting`, for handing them to a job."""
    yield from _global_settings.items()
