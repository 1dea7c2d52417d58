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
    """Every setting b2box and b2luigi know, with its type and default.

    Each field's docstring is its entry in the settings reference of the documentation (docs/reference), which is
    generated from this class: say what the setting does and what reads it.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, use_attribute_docstrings=True)

    # Where things go.
    result_dir: PathStr = "."
    """Folder under which every output goes, as ``<result_dir>/<param>=<value>/.../<file>``; relative to the
    workflow script's folder. Read by ``add_to_output`` (and by remote targets as their server folder)."""
    log_dir: PathStr = "logs"
    """Folder of every task's logs (``stdout``, ``stderr``, ``exit.json``, ``provenance.json``, ``failure.log``),
    laid out like the outputs; relative to the script's folder."""
    task_file_dir: PathStr = "task_files"
    """Folder of every job's files (``job.json``, the wrapper ``job.sh``, submit files) and of the run's
    bookkeeping in ``.b2box/`` (run lock, job ledger); relative to the script's folder."""
    working_dir: PathStr | None = None
    """Folder a job starts in; default: the script's folder."""
    scratch_dir: PathStr | None = None
    """Fast local folder for temporary copies: ``LocalTarget.temporary_path()``/``get_temporary_input()``,
    remote outputs before their upload, remote inputs; default: the system's temporary folder."""
    parameter_separator: str = "="
    """What joins a parameter's name and value in output folders (``index=3``)."""
    use_parameter_name_in_output: bool = True
    """Whether output folders carry the parameter name (``index=3``) or only the value (``3``)."""
    # How things run.
    workers: int = 1
    """Tasks run at once without ``--batch`` (``--workers`` and ``process(workers=...)`` win)."""
    batch_workers: PositiveInt = 1000
    """Jobs in flight at once with ``--batch``, unless ``--workers`` or ``process(workers=...)`` says otherwise."""
    batch_system: BatchSystem = "auto"
    """Where ``--batch`` sends a task: ``local``, ``htcondor``, ``slurm``, ``lsf``, ``gbasf2``, ``custom`` (a
    plug-in), ``apptainer`` (b2luigi's name: locally in the Apptainer image), or ``auto`` (the first of bsub,
    condor_submit, sbatch found here, else local)."""
    retries: int = 0
    """How often a failed or held batch job is submitted again before its task counts as failed."""
    tasks_per_job: int = 1
    """Tasks put into one batch job (one container start, one Python) when they share an environment."""
    htcondor_interface: Literal["auto", "bindings", "cli"] = "auto"
    """How b2box talks to HTCondor: its Python bindings, its command-line tools, or the bindings when importable."""
    htcondor_container: Literal["wrapper", "container_image", "singularity_image"] = "wrapper"
    """Who starts an HTCondor job's container: b2box's wrapper, or HTCondor itself (``container_image``,
    ``singularity_image`` in the submit description)."""
    batch_poll_interval: float = 1.0
    """Seconds between the status queries of a batch run (one query for all of its jobs)."""
    batch_retry_limit: float = 600.0
    """Seconds a batch system may fail to answer before the run stops with exit 75, its jobs left as they are."""
    batch_command_timeout: float = 120.0
    """Seconds one batch-system command (submit, query, removal) may take before it is retried."""
    dry_run_pending_exit: Annotated[int, Field(ge=0, le=255)] = 1
    """Exit status of ``--dry-run`` when work is pending (b2luigi 1.3 exits 0: set 0 for that)."""
    secrets_dir: PathStr = "~/.b2box/secrets"
    """Folder of the per-job files that hand secrets (variables that look like tokens or passwords) to jobs, each
    readable only by its user and removed once read."""
    executable: list[str] | None = None
    """The Python a job runs the workflow with, e.g. ``["python3"]``; default: the image's, else this Python."""
    executable_prefix: list[str] = []
    """Words put before the job's Python command (e.g. ``["nice", "-n", "10"]``); b2luigi's older name:
    ``cmd_prefix``."""
    executable_is_entrypoint: bool | None = None
    """b2luigi's: how its batch-runner command line is built. No effect in b2box (jobs start through the wrapper)."""
    task_cmd_additional_args: list[str] = []
    """b2luigi's: words added to its batch-runner command line. No effect in b2box."""
    add_filename_to_cmd: bool = True
    """b2luigi's: whether its batch-runner command names the script. No effect in b2box."""
    shell: str = "bash"
    """b2luigi's: the shell of its executable wrapper. No effect in b2box, whose wrapper is a bash script."""
    # Environment of a job.
    env_script: PathStr = ""
    """A shell script sourced before the task runs (in its container, if any), e.g. a basf2 setup."""
    env: dict[str, str] = {}
    """Environment variables set for the task's job (in its container)."""
    image: str = ""
    """Container image the task runs in: an Apptainer SIF file or sandbox folder, ``docker://...``, a Docker image
    name or ID, or ``env:NAME`` for ``images/NAME`` built by ``b2box build-env``."""
    image_digest: str = ""
    """The digest the image must have (``sha256:...``); a different image is refused before anything runs."""
    runtime: Literal["auto", "apptainer", "docker", "none"] = "auto"
    """Container runtime: ``apptainer``, ``docker``, ``none``, or ``auto`` (from the image's form)."""
    binds: list[PathStr] = []
    """Extra folders bound into the container, ``/path`` or ``/host:/container``."""
    gpus: bool = False
    """Give the container the machine's GPUs (``--nv`` for Apptainer, ``--gpus all`` for Docker)."""
    extra_args: Words = []
    """Extra options for the container runtime's command (``apptainer exec`` or ``docker run``)."""
    pass_env: Words = []
    """Names of variables handed from the submitting shell into every job (recorded in provenance; secrets go
    through a private file): jobs otherwise see only the environment spec's variables."""
    apptainer_image: str = ""
    """b2luigi's name for an Apptainer ``image`` (implies ``runtime = "apptainer"``)."""
    apptainer_cmd: str = ""
    """The Apptainer command to use (``apptainer`` or ``singularity``); default: whichever is installed."""
    apptainer_mounts: list[PathStr] = []
    """b2luigi's name for ``binds``."""
    apptainer_mount_defaults: bool = True
    """b2luigi's: whether to mount its default folders. No effect in b2box, which always binds the result, log and
    working folders a job needs."""
    apptainer_additional_params: Words = []
    """b2luigi's name for ``extra_args`` of Apptainer."""
    # Batch systems.
    job_name: str | None = None
    """Name of the batch job (HTCondor ``JobBatchName``, Slurm ``--job-name``, LSF ``-J``)."""
    htcondor_settings: dict[str, Any] = {}
    """Lines of the HTCondor submit description, e.g. ``{"request_memory": "2 GB"}``."""
    transfer_files: list[PathStr] = []
    """Files an HTCondor job brings along when worker nodes share no filesystem (the job's folders come along)."""
    slurm_settings: dict[str, Any] = {}
    """``sbatch`` options, e.g. ``{"partition": "short", "time": "01:00:00"}``."""
    queue: str | None = None
    """LSF queue (``bsub -q``)."""
    job_slots: PositiveInt | None = None
    """LSF job slots (``bsub -n``), only when set."""
    lsf_settings: dict[str, Any] = {}
    """``bsub`` options, e.g. ``{"-R": "rusage[mem=4000]", "-W": "2:00"}``."""
    lsf_array_size: PositiveInt = 1000
    """Largest LSF job array b2box submits (the site's ``MAX_JOB_ARRAY_SIZE``); larger waves are split."""
    custom_backend: str = ""
    """``"package.module:Class"``: a b2box backend for ``batch_system = "custom"`` (else the task's
    ``process_class``, a b2luigi ``BatchProcess`` plug-in)."""
    batch_status_cache_ttl: float | None = None
    """b2luigi's: how long its per-job status cache lives. No effect in b2box, which queries all jobs at once."""
    # The Belle II grid (gbasf2), with b2luigi's names and defaults.
    gbasf2_setup_path: PathStr = "/cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc"
    """The gbasf2 setup script sourced before every gbasf2 command."""
    gbasf2_release: str | None = None
    """basf2 release of the grid jobs; default: the release of the submitting environment."""
    gbasf2_project_name_prefix: str | None = None
    """Prefix of the gbasf2 project names (the rest is a hash of the task)."""
    gbasf2_project_name_hash_length: Annotated[int, Field(ge=6, le=10)] = 10
    """Characters of the task hash in a project name."""
    gbasf2_input_dataset: str | list[str] | None = None
    """Grid dataset(s) the project reads (``gbasf2 -i``)."""
    gbasf2_input_dslist: PathStr | None = None
    """A file listing input datasets (``gbasf2 --input_dslist``)."""
    gbasf2_input_datafiles: list[str] = []
    """Grid files given to every job (``gbasf2 --input_datafiles``)."""
    gbasf2_n_repition_job: PositiveInt | None = None
    """Jobs of a project without input (``gbasf2 --repetition``; b2luigi's spelling)."""
    gbasf2_max_retries: NonNegativeInt = 0
    """How often each failed, stalled or killed job of a project is rescheduled before the task fails."""
    gbasf2_download_dataset: bool = True
    """Download the project's output dataset when it is done."""
    gbasf2_download_logs: bool = True
    """Download the project's job logs when it is done."""
    gbasf2_additional_files: list[PathStr] = []
    """Local files shipped with every job (``gbasf2 -f``)."""
    gbasf2_custom_steering_file: PathStr = ""
    """Your own steering file, shipped instead of the one b2box writes from the task's path."""
    gbasf2_cputime: PositiveInt | None = None
    """Expected CPU time per job in minutes (``gbasf2 --cputime``)."""
    gbasf2_evtpersec: PositiveInt | None = None
    """Expected events per second (``gbasf2 --evtpersec``)."""
    gbasf2_priority: Annotated[int, Field(ge=0, le=10)] | None = None
    """Job priority 0 to 10 (``gbasf2 --priority``)."""
    gbasf2_jobtype: str | None = None
    """Job type (``gbasf2 --jobtype``)."""
    gbasf2_basf2opt: str | None = None
    """Options handed to basf2 in every job (``gbasf2 --basf2opt``)."""
    gbasf2_input_grouping: Literal["site", "size"] | None = None
    """How input files are grouped into jobs (``gbasf2 --input_grouping``)."""
    gbasf2_lfn_sandboxfiles: bool = False
    """Sandbox files are grid files (``gbasf2 --lfn_sandboxfiles``)."""
    gbasf2_noscout: bool = False
    """Skip the scout jobs (``gbasf2 --noscout``)."""
    gbasf2_force_submission: bool = True
    """Submit without gbasf2's confirmation question (``gbasf2 --force``)."""
    gbasf2_additional_params: str | None = None
    """More ``gbasf2`` options, as one string."""
    gbasf2_additional_download_params: str = "--new"
    """Options of ``gb2_ds_get`` when the output is downloaded."""
    gbasf2_proxy_lifetime: PositiveInt = 24
    """Hours of a new grid proxy (``gb2_proxy_init -v``)."""
    gbasf2_min_proxy_lifetime: NonNegativeInt = 0
    """Hours a grid proxy must still be valid (at least a minute): a shorter one is renewed on a terminal, else
    the run stops saying how to make one."""
    gbasf2_proxy_group: str = "belle"
    """VOMS group of the proxy (``gb2_proxy_init -g``)."""
    gbasf2_project_lpn_path: str | None = None
    """Grid folder the project's output dataset goes into (``gbasf2 --output_ds <folder>/<project>``); default:
    gbasf2's, under the user's own folder."""
    gbasf2_print_status_updates: bool = True
    """Print a line whenever a project's job counts change."""
    gbasf2_status_interval: PositiveFloat = 300.0
    """Seconds between status queries of running projects (DIRAC limits how often it may be asked)."""
    max_event: NonNegativeInt = 0
    """Events a basf2 path processes (0: all), for basf2 tasks and gbasf2 steering files."""
    # Targets.
    default_task_target_class: Any = None
    """The target class ``add_to_output`` makes (default: ``b2box.LocalTarget``), e.g. ``b2box.RemoteTarget``."""
    target_class_kwargs: dict[str, Any] = {}
    """Keyword arguments for that class, e.g. ``{"file_system": b2box.XRootDSystem("root://host:1094")}``."""
    n_download_threads: int | None = 2
    """b2luigi's: parallel downloads of ``on_temporary_files`` inputs. No effect in b2box, which downloads remote
    inputs one after another when ``run()`` asks for them."""
    # b2luigi's older names, still read (with a warning) where b2luigi reads them.
    result_path: PathStr | None = None
    """b2luigi's older name of ``result_dir``."""
    log_folder: PathStr | None = None
    """b2luigi's older name of ``log_dir``."""
    cmd_prefix: list[str] | None = None
    """b2luigi's older name of ``executable_prefix``."""
    # b2luigi's settings for parts b2box does differently (see NO_EFFECT).
    batch_runner_cli: str | None = None
    """b2luigi's: the command its batch jobs start. No effect in b2box."""
    direct_mode: bool | None = None
    """b2luigi's: a mode of its own ``b2luigi`` command. No effect in b2box."""
    calculate_statistics: bool | None = None
    """b2luigi's: module statistics in its gbasf2 steering file. No effect in b2box."""
    X509_USER_PROXY: PathStr | None = None
    """Grid proxy file for remote storage (WebDAV client certificate); default: the environment variable."""
    X509_CERT_DIR: PathStr | None = None
    """Folder of the CA certificates remote storage is checked against; default: the environment variable."""
    strict_settings: bool = False
    """Make an unknown key in a settings file, ``set_setting()`` or a ``B2BOX_*`` variable an error, not a warning
    (also ``--strict-settings``)."""
    custom: dict[str, Any] = {}
    """Settings of your own, read with ``get_setting("name")`` like any other (top-level keys work too, with a
    warning)."""


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
