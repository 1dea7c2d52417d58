"""What one task's settings resolve to: one typed object, built here and only here.

Every layer below the user's API (the local engine, environments, batch
backends, the job side) reads a task's configuration from its
:class:`TaskSettings` and the run's from :class:`RunSettings`; nothing there
looks a setting up by its name. This module is the one place that turns the
settings chain (:mod:`b2box.settings.lookup`) into typed values: it applies
b2luigi's older names, resolves relative folders against the workflow
script, and, on the submitting side, checks values that a task defines
itself against the settings model, naming the task at fault.

A task's settings are resolved once and kept on the task; ``set_setting``,
``clear_setting`` and a reload of the settings files make the kept object
stale, so a changed value is always seen. Sections are resolved when first
read: a local run that only needs output folders never pays for the rest.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from b2box.errors import SettingsError
from b2box.settings import lookup
from b2box.settings.paths import map_folder

_ATTRIBUTE = "_b2box_settings"
DISPATCH_IN_PLACE = "_dispatch_local_execution"  # b2luigi's flag: run dispatched run() methods in this process


@dataclass(frozen=True)
class Folders:
    """Where a task's files go (absolute folders) and how parameters become folder names."""

    result_dir: str
    log_dir: str
    task_file_dir: str
    parameter_separator: str
    use_parameter_name_in_output: bool
    scratch_dir: str = ""  # where LocalTarget's temporary copies go; empty: the system's temporary folder


@dataclass(frozen=True)
class EnvironmentSettings:
    """A task's environment as its settings state it (b2luigi's Apptainer names folded in); :mod:`b2box.env.spec`
    validates it and decides the runtime."""

    image: str
    runtime: str  # as requested: auto, apptainer, docker or none
    env_script: str  # absolute, or empty
    env: Mapping[str, Any]
    binds: tuple[str, ...]
    gpus: bool
    extra_args: tuple[str, ...]
    working_dir: str  # absolute, or empty
    executable: tuple[str, ...] | None  # None: the default Python
    executable_prefix: tuple[str, ...]
    image_digest: str
    apptainer_cmd: str
    pass_env: tuple[str, ...] = ()  # variables handed from the submitting shell into every job


@dataclass(frozen=True)
class BatchSettings:
    """How a task goes to a batch system."""

    system: str  # as requested; "auto" is decided by b2box.batch.selection
    retries: int
    tasks_per_job: int  # 1: one job per task
    job_name: str
    htcondor_settings: Mapping[str, Any]
    htcondor_container: str
    slurm_settings: Mapping[str, Any]
    transfer_files: tuple[str, ...]
    queue: str = ""  # LSF's -q
    job_slots: int | None = None  # LSF's -n, only when set
    lsf_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # more bsub options
    lsf_array_size: int = 1000  # elements per job array (LSF's MAX_JOB_ARRAY_SIZE)

    def grouping_key(self) -> tuple[Any, ...]:
        """What must be equal for tasks to share one job or one submission."""
        return (self.job_name, _frozen(self.htcondor_settings), _frozen(self.slurm_settings))


@dataclass(frozen=True)
class GridSettings:
    """How a task goes to the Belle II grid (gbasf2), with b2luigi's setting names; release: see b2box.basf2."""

    setup_path: str
    release: str  # empty: the release of the submitting environment
    project_name_prefix: str
    project_name_hash_length: int
    input_dataset: tuple[str, ...]
    input_dslist: str
    input_datafiles: tuple[str, ...]
    repetitions: int | None
    max_retries: int
    download_dataset: bool
    download_logs: bool
    additional_files: tuple[str, ...]
    custom_steering_file: str
    cputime: int | None
    evtpersec: int | None
    priority: int | None
    jobtype: str
    basf2opt: str
    input_grouping: str
    lfn_sandboxfiles: bool
    noscout: bool
    force_submission: bool
    additional_params: str
    additional_download_params: str
    proxy_lifetime: int
    min_proxy_lifetime: int
    proxy_group: str
    project_lpn_path: str
    print_status_updates: bool
    status_interval: float
    max_event: int


@dataclass(frozen=True)
class TargetSettings:
    """How ``add_to_output`` makes its targets."""

    default_class: Any  # None: luigi.LocalTarget
    class_kwargs: Mapping[str, Any]


@dataclass(frozen=True)
class RunSettings:
    """Settings of the run as a whole (no task defines them)."""

    workers: int
    batch_poll_interval: float
    htcondor_interface: str
    task_file_dir: str  # absolute: the run's bookkeeping lives in <task_file_dir>/.b2box
    batch_retry_limit: float  # seconds a batch system may fail to answer before the run stops
    batch_command_timeout: float  # seconds one batch-system command may take
    secrets_dir: str  # absolute: where each job's secrets file waits for it (b2box.batch.secrets)
    dry_run_pending_exit: int = 1  # exit status of --dry-run when work is pending (b2luigi 1.3: 0)
    custom_backend: str = ""  # "package.module:Class", a b2box backend for batch_system = "custom"

    @property
    def state_dir(self) -> str:
        """``<task_file_dir>/.b2box``: the run's lock, waves, group jobs and submit files."""
        return os.path.join(self.task_file_dir, ".b2box")


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(key), _frozen(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _words(value: Any) -> tuple[str, ...]:
    """``"--nv --cleanenv"`` and ``["--nv", "--cleanenv"]`` alike."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    return tuple(str(item) for item in value)


class TaskSettings:
    """The resolved settings of one task (see the module docstring); get it with :func:`settings_of`."""

    def __init__(self, task: Any) -> None:
        self._task = task
        self.generation = lookup.generation()

    # -- reading the chain ---------------------------------------------------------------------------

    def _value(self, key: str, default: Any, old_keys: tuple[str, ...] = ()) -> Any:
        """The value of ``key`` (or of one of b2luigi's ``old_keys``), else ``default``; ``None`` counts as unset."""
        for name in (key, *old_keys):
            value, origin = lookup.find(name, self._task)
            if value is lookup.MISSING or value is None:
                continue
            if origin == lookup.TASK:
                value = _checked_task_value(type(self._task).__name__, name, value)
            if name != key:
                lookup.warn_deprecated(name, key)
            return lookup.copied(value)
        return default

    # -- the sections ----------------------------------------------------------------------------------

    @functools.cached_property
    def folders(self) -> Folders:
        return Folders(
            result_dir=map_folder(self._value("result_dir", ".", ("result_path",))),
            log_dir=map_folder(self._value("log_dir", "logs", ("log_folder",))),
            task_file_dir=map_folder(self._value("task_file_dir", "task_files")),
            parameter_separator=str(self._value("parameter_separator", "=")),
            use_parameter_name_in_output=bool(self._value("use_parameter_name_in_output", True)),
            scratch_dir=map_folder(self._value("scratch_dir", tempfile.gettempdir())),
        )

    @functools.cached_property
    def environment(self) -> EnvironmentSettings:
        image = str(self._value("image", ""))
        apptainer_image = str(self._value("apptainer_image", ""))
        runtime = str(self._value("runtime", "auto"))
        if not image and apptainer_image and runtime == "auto":
            runtime = "apptainer"  # b2luigi's apptainer_image names an Apptainer image
        executable = self._value("executable", None)
        if isinstance(executable, str):
            raise SettingsError(
                f"{self._task_id()}: setting 'executable' must be a list such as ['python3'], "
                f"not the string {executable!r}."
            )
        env_script = str(self._value("env_script", ""))
        working_dir = str(self._value("working_dir", ""))
        binds = (*_words(self._value("binds", [])), *_words(self._value("apptainer_mounts", [])))
        image = image or apptainer_image
        if image.endswith(".sif") and not os.path.isabs(image) and "://" not in image:
            image = map_folder(image)  # a SIF beside the workflow, like every other relative path in settings
        return EnvironmentSettings(
            image=image,
            runtime=runtime,
            env_script=map_folder(env_script) if env_script else "",
            env=dict(self._value("env", {}) or {}),
            binds=tuple(map_folder(bind) for bind in binds),
            gpus=bool(self._value("gpus", False)),
            extra_args=(
                *_words(self._value("extra_args", [])),
                *_words(self._value("apptainer_additional_params", [])),
            ),
            working_dir=map_folder(working_dir) if working_dir else "",
            executable=_words(executable) if executable is not None else None,
            executable_prefix=_words(self._value("executable_prefix", [], ("cmd_prefix",))),
            image_digest=str(self._value("image_digest", "")),
            apptainer_cmd=str(self._value("apptainer_cmd", "")),
            pass_env=_words(self._value("pass_env", [])),
        )

    @functools.cached_property
    def batch(self) -> BatchSettings:
        tasks_per_job = int(self._value("tasks_per_job", 1) or 1)
        if tasks_per_job <= 1 and getattr(self._task, "has_grouped_params", lambda: False)():
            tasks_per_job = int(getattr(self._task, "max_grouping_size", 1) or 1)  # b2luigi's grouped parameters
        return BatchSettings(
            system=self.batch_system,
            retries=int(self._value("retries", 0) or 0),
            tasks_per_job=max(1, tasks_per_job),
            job_name=str(self._value("job_name", "") or ""),
            htcondor_settings=dict(self._value("htcondor_settings", {}) or {}),
            htcondor_container=str(self._value("htcondor_container", "wrapper")),
            slurm_settings=dict(self._value("slurm_settings", {}) or {}),
            transfer_files=tuple(str(path) for path in self._value("transfer_files", []) or []),
            queue=str(self._value("queue", "") or ""),
            job_slots=self._value("job_slots", None),
            lsf_settings=dict(self._value("lsf_settings", {}) or {}),
            lsf_array_size=int(self._value("lsf_array_size", 1000)),
        )

    @functools.cached_property
    def grid(self) -> GridSettings:
        dataset = self._value("gbasf2_input_dataset", ())
        files = self._value("gbasf2_additional_files", [])
        custom = str(self._value("gbasf2_custom_steering_file", ""))
        dslist = str(self._value("gbasf2_input_dslist", ""))

        def text(key: str, default: str = "") -> str:
            return str(self._value(key, default) or default)

        return GridSettings(
            setup_path=text("gbasf2_setup_path", "/cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc"),
            release=text("gbasf2_release"),
            project_name_prefix=text("gbasf2_project_name_prefix"),
            project_name_hash_length=int(self._value("gbasf2_project_name_hash_length", 10)),
            input_dataset=(dataset,) if isinstance(dataset, str) else tuple(str(item) for item in dataset),
            input_dslist=map_folder(dslist) if dslist else "",
            input_datafiles=tuple(str(item) for item in self._value("gbasf2_input_datafiles", [])),
            repetitions=self._value("gbasf2_n_repition_job", None),
            max_retries=int(self._value("gbasf2_max_retries", 0)),
            download_dataset=bool(self._value("gbasf2_download_dataset", True)),
            download_logs=bool(self._value("gbasf2_download_logs", True)),
            additional_files=tuple(map_folder(str(path)) for path in ([files] if isinstance(files, str) else files)),
            custom_steering_file=map_folder(custom) if custom else "",
            cputime=self._value("gbasf2_cputime", None),
            evtpersec=self._value("gbasf2_evtpersec", None),
            priority=self._value("gbasf2_priority", None),
            jobtype=text("gbasf2_jobtype"),
            basf2opt=text("gbasf2_basf2opt"),
            input_grouping=text("gbasf2_input_grouping"),
            lfn_sandboxfiles=bool(self._value("gbasf2_lfn_sandboxfiles", False)),
            noscout=bool(self._value("gbasf2_noscout", False)),
            force_submission=bool(self._value("gbasf2_force_submission", True)),
            additional_params=text("gbasf2_additional_params"),
            additional_download_params=text("gbasf2_additional_download_params", "--new"),
            proxy_lifetime=int(self._value("gbasf2_proxy_lifetime", 24)),
            min_proxy_lifetime=int(self._value("gbasf2_min_proxy_lifetime", 0)),
            proxy_group=text("gbasf2_proxy_group", "belle"),
            project_lpn_path=text("gbasf2_project_lpn_path"),
            print_status_updates=bool(self._value("gbasf2_print_status_updates", True)),
            status_interval=float(self._value("gbasf2_status_interval", 300.0)),
            max_event=int(self._value("max_event", 0)),
        )

    @functools.cached_property
    def batch_system(self) -> str:
        """The ``batch_system`` alone (deciding where a task goes reads nothing else of the task)."""
        return str(self._value("batch_system", "auto"))

    @functools.cached_property
    def targets(self) -> TargetSettings:
        return TargetSettings(
            default_class=self._value("default_task_target_class", None),
            class_kwargs=dict(self._value("target_class_kwargs", {}) or {}),
        )

    @functools.cached_property
    def dispatch_in_place(self) -> bool:
        """Run ``@dispatch``-ed ``run()`` methods in this process (inside jobs, ``--test``)."""
        return bool(self._value(DISPATCH_IN_PLACE, False, ("local_execution",)))

    def _task_id(self) -> str:
        return str(getattr(self._task, "task_id", type(self._task).__name__))


def settings_of(task: Any) -> TaskSettings:
    """The resolved settings of ``task``, made once and kept until a setting may have changed."""
    kept = task.__dict__.get(_ATTRIBUTE) if hasattr(task, "__dict__") else None
    if kept is not None and kept.generation == lookup.generation():
        return kept
    resolved = TaskSettings(task)
    if hasattr(task, "__dict__"):
        task.__dict__[_ATTRIBUTE] = resolved
    return resolved


def drop_resolved_settings(task: Any) -> None:
    """Drop what was resolved for ``task``: the next :func:`settings_of` reads the chain again (each batch submission
    of a task does this, so a retry sees what a task's property says now, e.g. more memory)."""
    if hasattr(task, "__dict__"):
        task.__dict__.pop(_ATTRIBUTE, None)


def run_settings(workers: int | None = None, batch: bool = False) -> RunSettings:
    """The settings of the run; ``workers`` from the command line or ``process()`` wins over the settings, which are
    ``workers`` for a local run and ``batch_workers`` (jobs in flight) for a batch run."""

    def value(key: str, default: Any) -> Any:
        found = lookup.find(key)[0]
        return default if found is lookup.MISSING or found is None else found

    return RunSettings(
        workers=max(1, int(workers or (value("batch_workers", 1000) if batch else value("workers", 1)))),
        batch_poll_interval=float(value("batch_poll_interval", 1.0)),
        htcondor_interface=str(value("htcondor_interface", "auto")),
        task_file_dir=map_folder(value("task_file_dir", "task_files")),
        batch_retry_limit=float(value("batch_retry_limit", 600.0)),
        batch_command_timeout=float(value("batch_command_timeout", 120.0)),
        secrets_dir=map_folder(value("secrets_dir", "~/.b2box/secrets")),
        dry_run_pending_exit=int(value("dry_run_pending_exit", 1)),
        custom_backend=str(value("custom_backend", "")),
    )


def _checked_task_value(task_class: str, key: str, value: Any) -> Any:
    """On the submitting side, a value a task defines itself must have the setting's type (errors name the
    task class and the attribute); inside a job, values were checked at submission."""
    if not lookup.validating():
        return value
    from b2box.settings.model import checked_task_value

    return checked_task_value(task_class, key, value)


def x509_credentials() -> tuple[str, str]:
    """``X509_USER_PROXY`` and ``X509_CERT_DIR`` for remote storage: the setting, else the environment variable (as
    b2luigi reads them); empty when neither is there."""
    found = []
    for name in ("X509_USER_PROXY", "X509_CERT_DIR"):
        value = lookup.find(name)[0]
        found.append(str(value) if value not in (lookup.MISSING, None) else os.environ.get(name, ""))
    return found[0], found[1]
