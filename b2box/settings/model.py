"""The typed model of every setting, and the checks that name the source at fault.

Kept apart from :mod:`b2box.settings.lookup` so that a job process never imports
pydantic: jobs run with settings that were validated when they were
submitted, and b2box's job side stays pure Python, which lets the host's
installation be mounted into images with another Python version.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from b2box.errors import SettingsError, SettingWarning
from b2box.settings.sources import CUSTOM_SECTION, ENV_PREFIX


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _split_words(value: Any) -> Any:
    """Accept ``"--nv --cleanenv"`` as well as ``["--nv", "--cleanenv"]``."""
    return value.split() if isinstance(value, str) else value


PathStr = Annotated[str, BeforeValidator(_fspath)]
Words = Annotated[list[str], NoDecode, BeforeValidator(_split_words)]
# "apptainer" is b2luigi's name for running jobs here in their Apptainer image: b2box's local backend does that
BatchSystem = Literal["auto", "local", "lsf", "htcondor", "slurm", "gbasf2", "apptainer", "custom"]


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
    batch_workers: PositiveInt = 1000  # jobs in flight at once with --batch, unless --workers or process() says
    batch_system: BatchSystem = "auto"
    retries: int = 0
    tasks_per_job: int = 1
    htcondor_interface: Literal["auto", "bindings", "cli"] = "auto"
    htcondor_container: Literal["wrapper", "container_image", "singularity_image"] = "wrapper"
    batch_poll_interval: float = 1.0
    batch_retry_limit: float = 600.0
    batch_command_timeout: float = 120.0
    dry_run_pending_exit: Annotated[int, Field(ge=0, le=255)] = 1  # --dry-run with work pending; b2luigi's is 0
    secrets_dir: PathStr = "~/.b2box/secrets"
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
    pass_env: Words = []
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
    job_slots: PositiveInt | None = None
    lsf_settings: dict[str, Any] = {}
    lsf_array_size: PositiveInt = 1000
    custom_backend: str = ""  # "package.module:Class": a b2box backend for batch_system = "custom"
    batch_status_cache_ttl: float | None = None
    # The Belle II grid (gbasf2), with b2luigi's names and defaults.
    gbasf2_setup_path: PathStr = "/cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc"
    gbasf2_release: str | None = None  # default: the release of the submitting environment
    gbasf2_project_name_prefix: str | None = None
    gbasf2_project_name_hash_length: Annotated[int, Field(ge=6, le=10)] = 10
    gbasf2_input_dataset: str | list[str] | None = None
    gbasf2_input_dslist: PathStr | None = None
    gbasf2_input_datafiles: list[str] = []
    gbasf2_n_repition_job: PositiveInt | None = None
    gbasf2_max_retries: NonNegativeInt = 0
    gbasf2_download_dataset: bool = True
    gbasf2_download_logs: bool = True
    gbasf2_additional_files: list[PathStr] = []
    gbasf2_custom_steering_file: PathStr = ""
    gbasf2_cputime: PositiveInt | None = None
    gbasf2_evtpersec: PositiveInt | None = None
    gbasf2_priority: Annotated[int, Field(ge=0, le=10)] | None = None
    gbasf2_jobtype: str | None = None
    gbasf2_basf2opt: str | None = None
    gbasf2_input_grouping: Literal["site", "size"] | None = None
    gbasf2_lfn_sandboxfiles: bool = False
    gbasf2_noscout: bool = False
    gbasf2_force_submission: bool = True
    gbasf2_additional_params: str | None = None
    gbasf2_additional_download_params: str = "--new"
    gbasf2_proxy_lifetime: PositiveInt = 24
    gbasf2_min_proxy_lifetime: NonNegativeInt = 0
    gbasf2_proxy_group: str = "belle"
    gbasf2_project_lpn_path: str | None = None
    gbasf2_print_status_updates: bool = True
    gbasf2_status_interval: PositiveFloat = 300.0
    max_event: NonNegativeInt = 0
    # Targets.
    default_task_target_class: Any = None
    target_class_kwargs: dict[str, Any] = {}
    n_download_threads: int | None = 2
    # b2luigi's older names, still read (with a warning) where b2luigi reads them.
    result_path: PathStr | None = None
    log_folder: PathStr | None = None
    cmd_prefix: list[str] | None = None
    # b2luigi's settings for parts b2box does differently (see NO_EFFECT).
    batch_runner_cli: str | None = None
    direct_mode: bool | None = None
    calculate_statistics: bool | None = None
    X509_USER_PROXY: PathStr | None = None
    X509_CERT_DIR: PathStr | None = None
    # Unknown keys in settings files, set_setting() and B2BOX_* variables: a warning (False) or an error (True).
    strict_settings: bool = False
    # Your own settings, read with get_setting("name") like any other.
    custom: dict[str, Any] = {}


KNOWN_SETTINGS: dict[str, Any] = dict(SettingValues.model_fields)
_FREE_PREFIXES = ("gbasf2_", "_")  # other gbasf2 options pass unchecked; "_" marks b2luigi internals
# B2BOX_* variables that are b2box's own plumbing, not settings
_PLUMBING_VARIABLES = ("settings", "script", "job_id", "job_server", "root")

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
    "calculate_statistics": "b2box's gbasf2 steering file does not ask basf2 for module statistics",
}


_python_format = warnings.formatwarning


def _format_warning(message: Any, category: type[Warning], filename: str, lineno: int, line: str | None = None) -> str:
    """Setting warnings are about the user's files and names, not a line of b2box: shown as one plain line."""
    if issubclass(category, SettingWarning):
        return f"b2box: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


warnings.formatwarning = _format_warning


def _resembles(key: str, known: Any = KNOWN_SETTINGS) -> str:
    hint = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{hint[0]}'?)" if hint else ""


def is_unknown(key: str) -> bool:
    """Whether ``key`` is neither a setting b2box or b2luigi knows nor a name left free on purpose."""
    return key not in KNOWN_SETTINGS and not key.startswith(_FREE_PREFIXES)


def report_unknown(source: str, key: str, strict: bool, shown: str | None = None, known: Any = KNOWN_SETTINGS) -> None:
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


def _raise_for(source: str, exc: ValidationError) -> None:
    problems = [f"setting '{error['loc'][0] if error['loc'] else '?'}': {_describe(error)}" for error in exc.errors()]
    raise SettingsError(f"{source}: " + "; ".join(problems) + ". Fix it there and run again.")


def validate_file_content(path: str, data: Any, strict: bool = False) -> dict[str, Any]:
    """A settings file's content, checked against the model; errors name the file and the key.

    Keys of the user's own (b2luigi allows them at the top level) are kept for ``get_setting``, with a warning
    naming the known key they resemble; ``strict`` makes them an error.
    """
    if not isinstance(data, dict):
        raise SettingsError(
            f'{path}: a settings file must hold one JSON object ({{"result_dir": ...}}), '
            f"not {type(data).__name__}. Fix the file and run again."
        )
    check_names(path, data, strict)
    try:
        SettingValues.model_validate({key: value for key, value in data.items() if key in KNOWN_SETTINGS})
    except ValidationError as exc:
        _raise_for(path, exc)
    if not isinstance(data.get(CUSTOM_SECTION, {}), dict):
        raise SettingsError(f'{path}: "{CUSTOM_SECTION}" must be an object of your own settings.')
    return data


def environment_values(strict: bool = False) -> dict[str, Any]:
    """``B2BOX_*`` variables, typed by pydantic-settings; errors name the variable, unknown names are reported."""
    try:
        parsed = _EnvironmentSettings()
    except ValidationError as exc:
        problems = [f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {_describe(e)}" for e in exc.errors()]
        raise SettingsError("environment: " + "; ".join(problems) + ". Fix or unset the variable.") from None
    except Exception as exc:  # pydantic-settings reports JSON errors of complex fields this way
        raise SettingsError(
            f'environment: {exc}. Values of list and dict settings must be JSON, e.g. {ENV_PREFIX}ENV=\'{{"A": "1"}}\'.'
        ) from None
    values = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    own = {name.lower() for name in values}
    variables = [f"{ENV_PREFIX}{known.upper()}" for known in KNOWN_SETTINGS]
    by_lower_case = {known.lower(): known for known in KNOWN_SETTINGS}
    for name, value in os.environ.items():
        key = name[len(ENV_PREFIX) :].lower()
        if not name.startswith(ENV_PREFIX) or key in _PLUMBING_VARIABLES:
            continue
        key = by_lower_case.get(key, key)
        if is_unknown(key):
            report_unknown("environment", key, strict, shown=name, known=variables)
        else:
            report_no_effect(f"environment ({name})", key)
        if key not in own:
            values.setdefault(key, value)
    return values


def check_value(key: str, value: Any, strict: bool = False) -> None:
    """A ``set_setting`` value of a known key must have the key's type; an unknown key is reported."""
    check_names(f"set_setting('{key}')", [key], strict)
    if key not in KNOWN_SETTINGS or key == CUSTOM_SECTION:
        return
    try:
        SettingValues.model_validate({key: value})
    except ValidationError as exc:
        raise SettingsError(
            f"set_setting('{key}', {value!r}): {_describe(exc.errors()[0])}. Pass a value of that type."
        ) from None


_checked_values: dict[tuple[str, str, str], Any] = {}


def checked_task_value(task_class: str, key: str, value: Any) -> Any:
    """A value that a task defines itself, checked against (and converted to) the setting's type.

    Results are remembered by value: the many tasks of a family share their class attributes.
    """
    if key not in KNOWN_SETTINGS or key == CUSTOM_SECTION:
        return value
    try:
        memo = (key, type(value).__qualname__, repr(value))
    except Exception:  # a value without a usable repr: check it every time
        memo = None
    if memo is not None and memo in _checked_values:
        return _checked_values[memo]
    try:
        checked = getattr(SettingValues.model_validate({key: value}), key)
    except ValidationError as exc:
        raise SettingsError(
            f"task {task_class}: attribute '{key}': {_describe(exc.errors()[0])}. "
            "Give the attribute a value of the setting's type."
        ) from None
    if memo is not None:
        _checked_values[memo] = checked
    return checked


def default_of(key: str) -> Any:
    """The model's default of ``key``, or None."""
    field = KNOWN_SETTINGS.get(key)
    return None if field is None else field.default
