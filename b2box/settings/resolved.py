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

import functools
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from b2box.errors import SettingsError
from b2box.settings import class_wide, declared, lookup
from b2box.settings.declared import SettingGroup
from b2box.settings.paths import map_folder, script_dir
from b2box.settings.sizes import parse_size

_ATTRIBUTE = "_b2box_settings"
DISPATCH_IN_PLACE = "_dispatch_local_execution"  # b2luigi's flag: run dispatched run() methods in this process
G = TypeVar("G", bound=SettingGroup)
_Section = TypeVar("_Section")


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
    secret_env: tuple[str, ...] = ()  # names or patterns of variables that are secrets too

    @property
    def states_environment(self) -> bool:
        """Whether it states where a task runs (an image, an env_script, variables or binds): else the host."""
        return bool(self.image or self.env_script or self.env or self.binds)


@dataclass(frozen=True)
class BatchSettings:
    """How a task goes to a batch system (what every batch system reads; each one's own settings are its
    :class:`~b2box.settings.declared.SettingGroup`, read with :meth:`TaskSettings.group`)."""

    system: str  # as requested; "auto" is decided by b2box.batch.backends.registry
    retries: int
    tasks_per_job: int  # 1: one job per task
    job_name: str
    transfer_files: tuple[str, ...] = ()
    max_jobs_in_flight: int | None = None  # of the task's family at once (None: --workers alone limits)
    request_memory: int | None = None  # bytes (None: the batch system's default)
    memory_growth: float | None = None  # a job killed for memory comes back with its request times this
    max_memory: int | None = None  # bytes: the largest request memory_growth makes


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
    task_file_dir: str  # absolute: the run's bookkeeping lives in <task_file_dir>/.b2box
    batch_retry_limit: float  # seconds a batch system may fail to answer before the run stops
    batch_command_timeout: float  # seconds one batch-system command may take
    secrets_dir: str  # absolute: where each job's secrets file waits for it (b2box.batch.secrets)
    dry_run_pending_exit: int = 1  # exit status of --dry-run when work is pending (b2luigi 1.3: 0)
    secret_env: tuple[str, ...] = ()  # names or patterns of variables that are secrets too (set for the whole run)
    keep_graph: bool = True  # a complete graph is kept for the next command (b2box.engine.kept_graph)

    @property
    def state_dir(self) -> str:
        """``<task_file_dir>/.b2box``: the run's lock, waves, group jobs and submit files."""
        return os.path.join(self.task_file_dir, ".b2box")


def _size(value: Any) -> int | None:
    return None if value is None else parse_size(value)


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
        self._sections: dict[Any, Any] = {}  # sections kept for this task alone (a dict made once, never grown per key)

    # -- reading the chain ---------------------------------------------------------------------------

    def _value(self, key: str, old_keys: tuple[str, ...] = (), convert: bool = False) -> Any:
        """The value of ``key`` (or of one of b2luigi's ``old_keys``), else its declared default; ``None`` counts as
        unset. A value the task defines itself is checked against the model; with ``convert``, every value is
        converted to the setting's type (on the submitting side)."""
        value, origin = lookup.find(key, self._task)
        if value is lookup.MISSING or value is None:
            return self._older(key, old_keys, convert) if old_keys else _fresh(declared.default_of(key))
        if origin == lookup.TASK or convert:
            value = _checked_task_value(type(self._task).__name__, key, value)
        return lookup.copied(value)

    def _older(self, key: str, old_keys: tuple[str, ...], convert: bool) -> Any:
        """The value of the first of b2luigi's older names that is set (with a warning), else the declared default."""
        for name in old_keys:
            value, origin = lookup.find(name, self._task)
            if value is lookup.MISSING or value is None:
                continue
            if origin == lookup.TASK or convert:
                value = _checked_task_value(type(self._task).__name__, name, value)
            lookup.warn_deprecated(name, key)
            return lookup.copied(value)
        return _fresh(declared.default_of(key))

    def group(self, group: type[G]) -> G:
        """The task's values of a group of settings declared elsewhere (a batch system's own), each converted to
        its type; resolved once per task."""
        found = self._sections.get(group)
        if found is None:
            found = group(**{name: self._value(name, convert=True) for name in group.declared})
            self._sections[group] = found
        return found

    # -- the sections ----------------------------------------------------------------------------------

    @property
    def folders(self) -> Folders:
        """The folders section; shared by every task of a class that defines none of its keys per task, like the
        environment section (relative folders are resolved against the script's folder, part of what is kept)."""
        found = self._sections.get(Folders)  # kept for this task too: asked for several times per output
        if found is None:
            found = self._class_wide(class_wide.FOLDER_KEYS, self._folders, context=script_dir())
            self._sections[Folders] = found
        return found

    def _folders(self) -> Folders:
        return Folders(
            result_dir=map_folder(self._value("result_dir", ("result_path",))),
            log_dir=map_folder(self._value("log_dir", ("log_folder",))),
            task_file_dir=map_folder(self._value("task_file_dir")),
            parameter_separator=str(self._value("parameter_separator")),
            use_parameter_name_in_output=bool(self._value("use_parameter_name_in_output")),
            scratch_dir=map_folder(self._value("scratch_dir") or tempfile.gettempdir()),
        )

    @property
    def environment(self) -> EnvironmentSettings:
        """The environment section; shared by every task of a class that defines none of its keys per task:
        checking a hundred thousand results costs one resolution, and nothing is kept per task."""
        return self._class_wide(class_wide.ENVIRONMENT_KEYS, self._environment)

    def _class_wide(self, keys: frozenset[str], make: Callable[[], _Section], context: str = "") -> _Section:
        """``make()``, once for every task of the class when the class defines none of ``keys`` per task
        (:mod:`b2box.settings.class_wide`), else once for this task."""
        found = class_wide.shared(self._task, keys, (self.generation, context), make)
        if found is not None:
            return found
        found = self._sections.get(keys)
        if found is None:
            found = self._sections[keys] = make()
        return found

    def _environment(self) -> EnvironmentSettings:
        image = str(self._value("image"))
        apptainer_image = str(self._value("apptainer_image"))
        runtime = str(self._value("runtime"))
        if not image and apptainer_image and runtime == "auto":
            runtime = "apptainer"  # b2luigi's apptainer_image names an Apptainer image
        executable = self._value("executable")
        if isinstance(executable, str):
            raise SettingsError(
                f"{self._task_id()}: setting 'executable' must be a list such as ['python3'], "
                f"not the string {executable!r}."
            )
        env_script = str(self._value("env_script"))
        working_dir = str(self._value("working_dir") or "")
        binds = (*_words(self._value("binds")), *_words(self._value("apptainer_mounts")))
        image = image or apptainer_image
        if image.endswith(".sif") and not os.path.isabs(image) and "://" not in image:
            image = map_folder(image)  # a SIF beside the workflow, like every other relative path in settings
        return EnvironmentSettings(
            image=image,
            runtime=runtime,
            env_script=map_folder(env_script) if env_script else "",
            env=dict(self._value("env") or {}),
            binds=tuple(map_folder(bind) for bind in binds),
            gpus=bool(self._value("gpus")),
            extra_args=(
                *_words(self._value("extra_args")),
                *_words(self._value("apptainer_additional_params")),
            ),
            working_dir=map_folder(working_dir) if working_dir else "",
            executable=_words(executable) if executable is not None else None,
            executable_prefix=_words(self._value("executable_prefix", ("cmd_prefix",))),
            image_digest=str(self._value("image_digest")),
            apptainer_cmd=str(self._value("apptainer_cmd")),
            pass_env=_words(self._value("pass_env")),
            secret_env=_words(self._value("secret_env")),
        )

    @functools.cached_property
    def batch(self) -> BatchSettings:
        tasks_per_job = int(self._value("tasks_per_job") or 1)
        if tasks_per_job <= 1 and getattr(self._task, "has_grouped_params", lambda: False)():
            tasks_per_job = int(getattr(self._task, "max_grouping_size", 1) or 1)  # b2luigi's grouped parameters
        return BatchSettings(
            system=self.batch_system,
            retries=int(self._value("retries") or 0),
            tasks_per_job=max(1, tasks_per_job),
            job_name=str(self._value("job_name") or ""),
            transfer_files=tuple(str(path) for path in self._value("transfer_files") or []),
            max_jobs_in_flight=int(self._value("max_jobs_in_flight") or 0) or None,
            request_memory=_size(self._value("request_memory")),
            memory_growth=float(self._value("memory_growth") or 0) or None,
            max_memory=_size(self._value("max_memory")),
        )

    @property
    def batch_system(self) -> str:
        """The ``batch_system`` alone (deciding where a task goes reads nothing else of the task); one value for all
        tasks of a class, like the environment section."""
        return self._class_wide(class_wide.BATCH_SYSTEM_KEYS, lambda: str(self._value("batch_system")))

    @property
    def targets(self) -> TargetSettings:
        """How outputs are made; one value for all tasks of a class, like the environment section."""
        return self._class_wide(class_wide.TARGET_KEYS, self._targets)

    def _targets(self) -> TargetSettings:
        return TargetSettings(
            default_class=self._value("default_task_target_class"),
            class_kwargs=dict(self._value("target_class_kwargs") or {}),
        )

    @functools.cached_property
    def dispatch_in_place(self) -> bool:
        """Run ``@dispatch``-ed ``run()`` methods in this process (inside jobs, ``--test``)."""
        return bool(self._value(DISPATCH_IN_PLACE, ("local_execution",)))

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
    return RunSettings(
        workers=max(1, int(workers or (_run_value("batch_workers") if batch else _run_value("workers")))),
        batch_poll_interval=float(_run_value("batch_poll_interval")),
        task_file_dir=map_folder(_run_value("task_file_dir")),
        batch_retry_limit=float(_run_value("batch_retry_limit")),
        batch_command_timeout=float(_run_value("batch_command_timeout")),
        secrets_dir=map_folder(_run_value("secrets_dir")),
        dry_run_pending_exit=int(_run_value("dry_run_pending_exit")),
        secret_env=_words(_run_value("secret_env")),
        keep_graph=bool(_run_value("keep_graph")),
    )


def run_group(group: type[G]) -> G:
    """The run's values of a group of settings no task defines (a batch system's way of being talked to)."""
    values = {}
    for name in group.declared:
        value = _run_value(name)
        values[name] = _checked_task_value("(run)", name, value) if value is not None else None
    return group(**values)


def _run_value(key: str) -> Any:
    found = lookup.find(key)[0]
    return _fresh(declared.default_of(key)) if found is lookup.MISSING or found is None else lookup.copied(found)


def _fresh(default: Any) -> Any:
    """A declared default as a value of its own: a new container for a list or dict default (never the declaration's
    own object, which a caller could change), the value itself otherwise."""
    kind = type(default)
    if kind is dict or kind is list or kind is set:
        return lookup.copied(default) if default else kind()
    return default


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
