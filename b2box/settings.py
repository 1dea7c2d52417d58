"""Settings: one typed model, one lookup chain.

A setting is looked up, first hit wins, in

1. the task: an attribute or property of that name on the task or its classes,
2. ``set_setting(key, value)`` in the script,
3. ``settings.json`` files: the script's folder upward (nearest first), then
   the one file named by ``B2BOX_SETTINGS`` or ``B2LUIGI_SETTINGS_JSON``,
4. environment variables ``B2BOX_<NAME>`` (``B2BOX_RESULT_DIR`` ...),
5. the default: the caller's, else the model's.

Settings files and environment variables are validated against
:class:`~b2box.settings_model.SettingValues` (pydantic) the first time they are read, so a wrong
type or a misspelt key stops the run before any task starts, with the file,
the key and what was expected. Values of your own go under ``"custom"`` in a
file. Dicts and lists handed out are copies: b2box never mutates what
``set_setting`` was given, and one task cannot leak a change into another.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from b2box.errors import SettingsError
from b2box.paths import script_dir

SETTINGS_FILE_NAME = "settings.json"
SETTINGS_FILE_ENV_VARS = ("B2BOX_SETTINGS", "B2LUIGI_SETTINGS_JSON")
ENV_PREFIX = "B2BOX_"
CUSTOM_SECTION = "custom"
# b2luigi's sentinel for "no default": returned as is when passed as default.
_no_value = object()
_MISSING = object()


def load_settings_file(path: str) -> dict[str, Any]:
    """Read and validate one settings file; errors name the file and the key."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise SettingsError(f"{path}: settings file not found (named by the environment). "
                            "Create it or unset the variable.") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). Fix the file."
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings file ({exc.strerror}).") from None
    if not _validating:
        return data if isinstance(data, dict) else {}
    from b2box.settings_model import validate_file_content

    return validate_file_content(path, data)


def settings_file_paths(start: str | None = None) -> list[str]:
    """The settings files in lookup order: nearest folder first, then the named file."""
    found = []
    folder = os.path.abspath(start or script_dir())
    while True:
        candidate = os.path.join(folder, SETTINGS_FILE_NAME)
        if os.path.isfile(candidate):
            found.append(candidate)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for name in SETTINGS_FILE_ENV_VARS:
        named = os.environ.get(name)
        if named:
            named = os.path.abspath(named)
            if named not in found:
                found.append(named)
            break
    return found


def _environment_values() -> dict[str, Any]:
    if _validating:
        from b2box.settings_model import environment_values

        return environment_values()
    values: dict[str, Any] = {}
    for name, raw in os.environ.items():
        if name.startswith(ENV_PREFIX):
            try:
                values[name[len(ENV_PREFIX):].lower()] = json.loads(raw)
            except ValueError:
                values[name[len(ENV_PREFIX):].lower()] = raw
    return values


_validating = True


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


def reload_settings() -> None:
    """Forget cached files and environment; the next lookup reads and validates them again."""
    global _layers
    _layers = None


def validate_settings() -> None:
    """Read every settings file and ``B2BOX_*`` variable now, failing on the first bad one."""
    reload_settings()
    _current_layers()


def _current_layers() -> _Layers:
    global _layers
    if _layers is None:
        files = [(path, load_settings_file(path)) for path in settings_file_paths()]
        _layers = _Layers(files=files, environment=_environment_values())
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


def _lookup(key: str, task: object | None) -> Any:
    if task is not None:
        value = _task_value(key, task)
        if value is not _MISSING:
            return value
    if key in _global_settings:
        return _global_settings[key]
    layers = _current_layers()
    for _, data in layers.files:
        if key in data:
            return data[key]
        custom = data.get(CUSTOM_SECTION)
        if isinstance(custom, dict) and key in custom:
            return custom[key]
    if key in layers.environment:
        return layers.environment[key]
    return _MISSING


def _copied(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, dict | list | set) else value


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
                    DeprecationWarning,
                    stacklevel=2,
                )
                break
    if value is not _MISSING:
        return _copied(value)
    if default is not None:
        return default
    known_default = _model_default(key)
    if known_default is not None:
        return _copied(known_default)
    raise ValueError(f"No settings found for {key}! Set it with set_setting('{key}', ...) or in settings.json.")


def _model_default(key: str) -> Any:
    try:
        from b2box.settings_model import default_of
    except ImportError:  # a job in an image whose Python cannot load pydantic: no model defaults there
        return None
    return default_of(key)


def set_setting(key: str, value: Any) -> None:
    """Set ``key`` for every task that does not define it itself (the object is kept, never changed)."""
    if _validating:
        from b2box.settings_model import check_value

        check_value(key, value)
    _global_settings[key] = value


def clear_setting(key: str) -> None:
    """Forget a value given to :func:`set_setting`; unknown keys are ignored."""
    _global_settings.pop(key, None)


def iter_global_settings() -> Iterator[tuple[str, Any]]:
    """The values given to :func:`set_setting`, for handing them to a job."""
    yield from _global_settings.items()
