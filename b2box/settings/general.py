"""The settings every task has, declared once (see :mod:`b2box.settings.declared`); a batch system's own settings are
declared in its module under ``b2box/batch/backends/``.

Each setting's docstring is its entry in the settings reference of the documentation (docs/reference), which is
generated from the declarations: say what the setting does and what reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from b2box.settings.declared import SettingGroup

if TYPE_CHECKING:
    from b2box.settings.types import (
        ExitStatus,
        Growth,
        MemorySize,
        NonNegativeInt,
        PathStr,
        PositiveFloat,
        PositiveInt,
        Words,
    )


class Folders(SettingGroup):
    """Where a task's outputs, logs and job files go, and how parameters become folder names."""

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


class Running(SettingGroup):
    """How tasks run: here or as batch jobs, how many at once, how batch systems are talked to."""

    workers: int = 1
    """Tasks run at once without ``--batch`` (``--workers`` and ``process(workers=...)`` win)."""
    batch_workers: PositiveInt = 1000
    """Jobs in flight at once with ``--batch``, unless ``--workers`` or ``process(workers=...)`` says otherwise."""
    batch_system: str = "auto"  # one of the registered batch systems (b2box.batch.backends.registry)
    """Where ``--batch`` sends a task: ``local``, ``htcondor``, ``slurm``, ``lsf``, ``gbasf2``, ``custom`` (a
    plug-in), ``apptainer`` (b2luigi's name: locally in the Apptainer image), or ``auto`` (the first of bsub,
    condor_submit, sbatch found here, else local)."""
    retries: int = 0
    """How often a failed or held batch job is submitted again before its task counts as failed."""
    max_jobs_in_flight: PositiveInt | None = None
    """Most jobs of a task family queued or running at once (set on a task class whose jobs hammer a shared file
    system); ``--workers`` still limits all of them together."""
    tasks_per_job: int = 1
    """Tasks put into one batch job (one container start, one Python) when they share an environment."""
    job_name: str | None = None
    """Name of the batch job (HTCondor ``JobBatchName``, Slurm ``--job-name``, LSF ``-J``)."""
    transfer_files: list[PathStr] = []
    """Files an HTCondor job brings along when worker nodes share no filesystem (the job's folders come along)."""
    batch_poll_interval: PositiveFloat = 1.0
    """Seconds between the status queries of a batch run (one query for all of its jobs)."""
    batch_retry_limit: PositiveFloat = 600.0
    """Seconds a batch system may fail to answer before the run stops with exit 75, its jobs left as they are."""
    batch_command_timeout: PositiveFloat = 120.0
    """Seconds one batch-system command (submit, query, removal) may take before it is retried."""
    dry_run_pending_exit: ExitStatus = 1
    """Exit status of ``--dry-run`` when work is pending (b2luigi 1.3 exits 0: set 0 for that)."""
    keep_graph: bool = True
    """Keep a complete workflow's graph so that a rerun with nothing to do, ``--status`` and ``--dry-run`` make no task
    (the graph is built again when code, settings, the environment, outputs or what ``requires()`` read change).
    Turn off for a workflow whose ``requires()`` decides by ``os.path.exists`` (docs/speed.md)."""
    secrets_dir: PathStr = "~/.b2box/secrets"
    """Folder of the per-job files that hand secrets (variables that look like tokens or passwords) to jobs, each
    readable only by its user and removed once read."""
    strict_settings: bool = False
    """Make an unknown key in a settings file, ``set_setting()`` or a ``B2BOX_*`` variable an error, not a warning
    (also ``--strict-settings``)."""


class Resources(SettingGroup):
    """What a task's job may use, said once and written in each batch system's own terms."""

    request_memory: MemorySize | None = None
    """Memory a task's job is given and held to, e.g. ``"2 GB"`` (a bare number is megabytes; 1 GB = 1024 MB):
    HTCondor ``request_memory``, Slurm ``--mem``, LSF ``-M``, Docker ``--memory``. A batch system's own option for it
    (``request_memory`` in ``htcondor_settings``, ``mem`` in ``slurm_settings``, ``-M`` in ``lsf_settings``,
    ``--memory`` in ``extra_args``) wins, with a warning. Apptainer and bare jobs on this machine are measured, not
    held to it (the batch system around them enforces it)."""
    memory_growth: Growth | None = None
    """A job killed for memory comes back with its request multiplied by this (``2.0``: doubled) while the request
    stays within ``max_memory``; such resubmissions do not use up ``retries``. Unset: a job killed for memory is an
    ordinary failure (``retries`` resubmits it unchanged)."""
    max_memory: MemorySize | None = None
    """The largest request ``memory_growth`` makes; unset: eight times the first request."""


class JobCommand(SettingGroup):
    """The command a job starts its Python with (and b2luigi's settings for its own job command line)."""

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


class Environment(SettingGroup):
    """Where a task runs: its container image, env_script, variables and binds (b2luigi's Apptainer names too)."""

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
    secret_env: Words = []
    """Names, or patterns such as ``MY_*``, of variables that are secrets besides those b2box recognises by their
    names (``TOKEN``, ``PASSWORD``, ``KEY`` ...): jobs get them through a private file, never through ``job.sh``,
    ``job.json`` or a submit file."""
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


class Targets(SettingGroup):
    """How outputs are made and where remote ones live."""

    default_task_target_class: Any = None
    """The target class ``add_to_output`` makes (default: ``b2box.LocalTarget``), e.g. ``b2box.RemoteTarget``."""
    target_class_kwargs: dict[str, Any] = {}
    """Keyword arguments for that class, e.g. ``{"file_system": b2box.XRootDSystem("root://host:1094")}``."""
    n_download_threads: int | None = 2
    """b2luigi's: parallel downloads of ``on_temporary_files`` inputs. No effect in b2box, which downloads remote
    inputs one after another when ``run()`` asks for them."""
    X509_USER_PROXY: PathStr | None = None
    """Grid proxy file for remote storage (WebDAV client certificate); default: the environment variable."""
    X509_CERT_DIR: PathStr | None = None
    """Folder of the CA certificates remote storage is checked against; default: the environment variable."""


class Basf2(SettingGroup):
    """basf2 paths and the release they run with (read by the basf2 tasks and by the gbasf2 backend)."""

    max_event: NonNegativeInt = 0
    """Events a basf2 path processes (0: all), for basf2 tasks and gbasf2 steering files."""
    gbasf2_release: str | None = None
    """basf2 release of the grid jobs; default: the release of the submitting environment."""


class OlderNames(SettingGroup):
    """b2luigi's older names, still read (with a warning), and its settings for parts b2box does differently (see
    ``NO_EFFECT`` in :mod:`b2box.settings.names`)."""

    result_path: PathStr | None = None
    """b2luigi's older name of ``result_dir``."""
    log_folder: PathStr | None = None
    """b2luigi's older name of ``log_dir``."""
    cmd_prefix: list[str] | None = None
    """b2luigi's older name of ``executable_prefix``."""
    batch_runner_cli: str | None = None
    """b2luigi's: the command its batch jobs start. No effect in b2box."""
    direct_mode: bool | None = None
    """b2luigi's: a mode of its own ``b2luigi`` command. No effect in b2box."""
    calculate_statistics: bool | None = None
    """b2luigi's: module statistics in its gbasf2 steering file. No effect in b2box."""
    batch_status_cache_ttl: float | None = None
    """b2luigi's: how long its per-job status cache lives. No effect in b2box, which queries all jobs at once."""


class OwnSettings(SettingGroup):
    """Settings of the user's own."""

    custom: dict[str, Any] = {}
    """Settings of your own, read with ``get_setting("name")`` like any other (top-level keys work too, with a
    warning)."""


class Results(SettingGroup):
    """When a result made earlier is made again."""

    rerun_when: list[Literal["environment", "inputs", "code"]] = ["environment", "inputs"]
    """Which differences between what made a result and what would make it now run its task again: ``environment``
    (the image's digest, the env_script's content, the spec's variables and binds), ``inputs`` (an input was remade)
    and ``code`` (the task's own code, as the user wrote it). Other differences are reported as stale, not rerun;
    ``b2box run --rerun-stale`` reruns every stale result, ``--accept`` adopts them as they are."""
