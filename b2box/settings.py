"""Settings: one typed model, one lookup chain.

A setting is looked up, first hit wins, in

1. the task: an attribute or property of that name on the task or its classes,
2. ``set_setting(key, value)`` in the script,
3. ``settings.json`` files: the script's folder upward (nearest first), then
   the one file named by ``B2BOX_SETTINGS`` or ``B2LUIGI_SETTINGS_JSON``,
4. environment variables ``B2BOX_<NAME>`` (``B2BOX_RESULT_DIR`` ...),
5. the default: the caller's, else the model's.

Settings files and environment variables are validated against
:class:`SettingValues` (pydantic) the first time they are read, so a wrong
type or a misspelt key stops the run before any task starts, with the file,
the key and what was expected. Values of your own go under ``"custom"`` in a
file. Dicts and lists handed out are copies: b2box never mutates what
``set_setting`` was given, and one task cannot leak a change into another.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from b2box.errors import SettingsError
from b2box.paths import script_dir

SETTINGS_FILE_NAME = "settings.json"
SETTINGS_FILE_ENV_VARS = ("B2BOX_SETTINGS", "B2LUIGI_SETTINGS_JSON")
ENV_PREFIX = "B2BOX_"
CUSTOM_SECTION = "custom"

# b2luigi's sentinel for "no default": returned as is when passed as default.
_no_value = object()
_MISSING = object()


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _split_words(value: Any) -> Any:
    """Accept ``"--nv --cleanenv"`` as well as ``["--nv", "--cleanenv"]``."""
    return value.split() if isinstance(value, str) else value


PathStr = Annotated[str, BeforeValidator(_fspath)]
Words = Annotated[list[str], NoDecode, BeforeValidator(_split_words)]
BatchSystem = Literal["auto", "local", "lsf", "htcondor", "slurm", "gbasf2", "apptainer", "test", "custom"]


class SettingValues(BaseModel):
    """Every setting b2box and b2luigi know, with its type and default."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    # Where things go.
    result_dir: PathStr = "."
    log_dir: PathStr = "logs"
    task_file_dir: PathStr = "task_files"
    working_dir: PathStr | None = None
    scratch_dir: PathStr | None = None
    parameter_separator: str = "="
    use_parameter_name_in_output: bool = True
    # How things run.
    workers: int = 1
    batch_system: BatchSystem = "auto"
    retries: int = 0
    batch_poll_interval: float = 1.0
    executable: list[str] | None = None
    executable_prefix: list[str] = []
    executable_is_entrypoint: bool | None = None
    task_cmd_additional_args: list[str] = []
    add_filename_to_cmd: bool = True
    shell: str = "bash"
    # Environment of a job.
    env_script: PathStr = ""
    env: dict[str, str] = {}
    image: str = ""
    image_digest: str = ""
    runtime: Literal["auto", "apptainer", "docker", "none"] = "auto"
    binds: list[PathStr] = []
    gpus: bool = False
    extra_args: Words = []
    apptainer_image: str = ""
    apptainer_cmd: str = ""
    apptainer_mounts: list[PathStr] = []
    apptainer_mount_defaults: bool = True
    apptainer_additional_params: Words = []
    # Batch systems.
    job_name: str | None = None
    htcondor_settings: dict[str, Any] = {}
    transfer_files: list[PathStr] = []
    slurm_settings: dict[str, Any] = {}
    queue: str | None = None
    job_slots: int | None = None
    batch_status_cache_ttl: float | None = None
    # Targets.
    default_task_target_class: Any = None
    target_class_kwargs: dict[str, Any] = {}
    n_download_threads: int | None = 2
    # b2luigi's older names, still read (with a warning) where b2luigi reads them.
    result_path: PathStr | None = None
    log_folder: PathStr | None = None
    cmd_prefix: list[str] | None = None
    # Your own settings, read with get_setting("name") like any other.
    custom: dict[str, Any] = {}


KNOWN_SETTINGS: dict[str, Any] = dict(SettingValues.model_fields)
_FREE_PREFIXES = ("gbasf2_", "_")  # gbasf2 has dozens of options; "_" marks b2luigi internals


class _EnvironmentSettings(SettingValues, BaseSettings):
    """The same fields, read from ``B2BOX_*`` environment variables by pydantic-settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False)


# ----------------------------------------------------------------------------------------------------
# Errors that name the source


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    if error.get("type") == "literal_error":
        message = message.replace("Input should be", "must be one of:")
    return f"{message} (got {error.get('input')!r})"


def _raise_for(source: str, exc: ValidationError, key_label: str = "setting") -> None:
    problems = []
    for error in exc.errors():
        key = str(error["loc"][0]) if error["loc"] else "?"
        if error["type"] == "extra_forbidden":
            hint = difflib.get_close_matches(key, KNOWN_SETTINGS, n=1)
            suggestion = f"did you mean '{hint[0]}'? " if hint else ""
            problems.append(
                f"unknown {key_label} '{key}': {suggestion}"
                f'put settings of your own under "{CUSTOM_SECTION}": {{"{key}": ...}}'
            )
        else:
            problems.append(f"{key_label} '{key}': {_describe(error)}")
    raise SettingsError(f"{source}: " + "; ".join(problems) + ". Fix it there and run again.")


def _validate_file_content(path: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path}: a settings file must hold one JSON object ({{\"result_dir\": ...}}), "
            f"not {type(data).__name__}. Fix the file and run again."
        )
    checked = {key: value for key, value in data.items() if not key.startswith(_FREE_PREFIXES)}
    try:
        SettingValues.model_validate(checked)
    except ValidationError as exc:
        _raise_for(path, exc)
    if not isinstance(data.get(CUSTOM_SECTION, {}), dict):
        raise SettingsError(f'{path}: "{CUSTOM_SECTION}" must be an object of your own settings.')
    return data


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
    return _validate_file_content(path, data)


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
    try:
        parsed = _EnvironmentSettings()
    except ValidationError as exc:
        problems = [f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {_describe(e)}" for e in exc.errors()]
        raise SettingsError(
            "environment: " + "; ".join(problems) + ". Fix or unset the variable."
        ) from None
    except Exception as exc:  # pydantic-settings reports JSON errors of complex fields this way
        raise SettingsError(
            f"environment: {exc}. Values of list and dict settings must be JSON, "
            f"e.g. {ENV_PREFIX}ENV='{{\"A\": \"1\"}}'."
        ) from None
    values = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    own = {name.lower() for name in values}
    for name, value in os.environ.items():
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX):].lower() not in own:
            values.setdefault(name[len(ENV_PREFIX):].lower(), value)
    return values


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
    field = KNOWN_SETTINGS.get(key)
    if field is not None and field.default is not None:
        return _copied(field.default)
    raise ValueError(f"No settings found for {key}! Set it with set_setting('{key}', ...) or in settings.json.")


def _check_value(key: str, value: Any) -> None:
    field = KNOWN_SETTINGS.get(key)
    if field is None or key == CUSTOM_SECTION:
        return
    try:
        SettingValues.model_validate({key: value})
    except ValidationError as exc:
        raise SettingsError(
            f"set_setting('{key}', {value!r}): {_describe(exc.errors()[0])}. Pass a value of that type."
        ) from None


def set_setting(key: str, value: Any) -> None:
    """Set ``key`` for every task that does not define it itself (the object is kept, never changed)."""
    _check_value(key, value)
    _global_settings[key] = value


def clear_setting(key: str) -> None:
    """Forget a value given to :func:`set_setting`; unknown keys are ignored."""
    _global_settings.pop(key, None)


def iter_global_settings() -> Iterator[tuple[str, Any]]:
    """The values given to :func:`set_setting`, for handing them to a job."""
    yield from _global_settings.items()
