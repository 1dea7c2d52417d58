"""From a task to a job every backend can run: ``job.json`` and the wrapper.

Preparing checks the task's environment spec and resolves its image to a
content digest (once per image per run), so a bad spec or a moved image is
reported for the task at fault before any job is submitted. What the job is
given comes from four places, each in its own module: its variables and secrets
(:mod:`b2box.batch.secrets`), its container's binds and command line
(:mod:`b2box.env.container`), the wrapper text (:mod:`b2box.env.wrapper`) and,
without a shared filesystem, its bundle (:mod:`b2box.batch.transfer`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

import luigi.task

from b2box import b2luigi_names, usage
from b2box import version as b2box_version
from b2box.batch import secrets, transfer
from b2box.batch.attempts import Attempt, first_attempt
from b2box.batch.backends.base import Capabilities, capabilities_of, managed_container
from b2box.batch.backends.registry import backend_type, names
from b2box.batch.jobs import WRAPPER_FILE, PreparedJob, clear_records
from b2box.env import container, images
from b2box.env.identity import ImageIdentity
from b2box.env.spec import EnvSpec, spec_for_task
from b2box.env.wrapper import WrapperPlan, host_python_version, render
from b2box.errors import TaskDefinitionError
from b2box.job import bootstrap, client
from b2box.job.files import EXIT_FILE, JOB_FILE, JobSpec
from b2box.settings import layout
from b2box.settings.lookup import iter_global_settings, settings_files
from b2box.settings.paths import script_path
from b2box.settings.resolved import run_settings, settings_of

BOOTSTRAP = os.path.abspath(bootstrap.__file__)  # bound into containers with b2box's folders, bundled for transfers
USAGE = os.path.abspath(usage.__file__)  # loaded by the bootstrap by its path


@dataclass(frozen=True)
class JobEnvironment:
    """A job's variables: written into its wrapper (public) or handed over through a private file (secret)."""

    public: dict[str, str]
    secret: dict[str, str]
    passed: dict[str, str]  # pass_env: from the submitting shell, by name (recorded in job.json)


def portable_settings() -> dict[str, Any]:
    """The ``set_setting`` values a job can receive as JSON (classes and other objects stay behind)."""
    portable = {}
    for key, value in iter_global_settings():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        portable[key] = value
    return portable


def import_path_of(cls: type) -> str:
    """The folder a job must put on sys.path to import ``cls``'s module (empty for the script itself)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if cls.__module__ == "__main__" or not path:
        return ""
    folder = os.path.dirname(os.path.abspath(path))
    depth = cls.__module__.count(".") + (1 if os.path.basename(path) == "__init__.py" else 0)
    for _ in range(depth):
        folder = os.path.dirname(folder)
    return folder


class JobPreparer:
    """Prepares jobs for one run; remembers resolved images so each is resolved once."""

    def __init__(self, backend: str, declared_by: Any = None) -> None:
        self.backend = backend
        # what the backend declares about its jobs: the backend, or its class (preparing needs no batch system)
        self._declared_by = declared_by if declared_by is not None else backend_type(backend)
        self.capabilities: Capabilities = capabilities_of(self._declared_by)
        self._plans: dict[str, tuple[EnvSpec, WrapperPlan]] = {}  # task id -> what its wrapper was made from
        self._files: tuple[list[tuple[str, dict[str, Any]]], dict[str, str]] | None = None

    def _settings_files(self) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """The settings files' contents for ``job.json`` (a job reads what the submitter read, not files that may
        have changed since), with secrets taken out: those reach the job as ``B2BOX_<KEY>`` variables."""
        if self._files is None:
            files: list[tuple[str, dict[str, Any]]] = []
            hidden: dict[str, str] = {}
            for path, data in reversed(settings_files()):  # nearer files last: their secrets win
                public, secret = secrets.split_settings(data, run_settings().secret_env)
                files.insert(0, (path, public))
                hidden.update(secret)
            self._files = (files, hidden)
        return self._files

    def identity(self, task: Any, spec: EnvSpec) -> ImageIdentity:
        """The identity of the task's image, resolved once per image (b2box.env.images)."""
        return images.resolve(task.task_id, spec)

    def plan_of(self, task_id: str) -> tuple[EnvSpec, WrapperPlan] | None:
        """What the wrapper of a job prepared in this run was made from (for packing jobs together)."""
        return self._plans.get(task_id)

    def prepare(
        self, task: Any, kept: tuple[str, dict[str, Any]] | None = None, attempt: Attempt | None = None
    ) -> PreparedJob:
        """Write the task's ``job.json`` and wrapper; errors (a bad spec, a folder that cannot be written) name the
        task and what to fix, and leave nothing submitted. ``kept``: what the job keeps beside its outputs (its
        result's identity, b2box.results); ``attempt``: which attempt this is and its memory request (default: the
        first, with the task's ``request_memory``)."""
        attempt = attempt or first_attempt(task)
        try:
            if self.capabilities.site_chooses_container:
                job = self._prepare_without_wrapper(task)
            else:
                job = self._prepare(task, kept, attempt)
            return replace(job, result_record=kept, request_memory=attempt.memory, attempt=attempt.number)
        except OSError as error:
            where = f" {error.filename}" if error.filename else ""
            raise TaskDefinitionError(
                f"{task.task_id}: cannot write the job's files{where} ({error.strerror}). Make log_dir and "
                "task_file_dir folders you can write to, with free space."
            ) from None

    def _prepare(self, task: Any, kept: tuple[str, dict[str, Any]] | None, attempt: Attempt) -> PreparedJob:
        spec = spec_for_task(task)
        moving = self._transfer_wanted(task, spec)
        managed = managed_container(self._declared_by, task, spec)
        identity = self.identity(task, spec)
        task_dir, log_dir = self._fresh_folders(task)
        variables = self._variables(task, spec)
        if variables.secret and moving:
            raise TaskDefinitionError(
                f"{task.task_id}: {', '.join(sorted(variables.secret))} look secret, and a job that brings its files "
                "along (transfer_files) cannot be given secrets without writing them into its bundle. Pass them "
                "another way (a token file on the worker nodes) or drop transfer_files."
            )
        secret_file = secrets.write_file(run_settings().secrets_dir, variables.secret) if variables.secret else ""
        docker_secrets = secret_file if spec.runtime == "docker" else ""
        job_file = os.path.join(task_dir, JOB_FILE)
        self._write_job_file(task, job_file, log_dir, identity, variables, kept, attempt)
        script = script_path() or ""
        working_dir = spec.working_dir or (os.path.dirname(script) if script else os.getcwd())
        # a job that brings its files along brings the bootstrap too (the image's own b2box does the rest)
        transferred = [*transfer.transferred_paths(task), BOOTSTRAP, USAGE] if moving else None
        starts_container = spec.in_container and not managed
        wrapper = os.path.join(task_dir, WRAPPER_FILE)
        folders, starting = [], []
        if starts_container:
            folders = container.job_folders([task], spec, working_dir, [task_dir, log_dir], transferred=transferred)
            starting = container.command(task.task_id, spec, identity, working_dir, folders, [wrapper, "--inside"],
                                         docker_secrets, attempt.memory)  # fmt: skip
        plan = WrapperPlan(
            title=task.task_id,
            wrapper_path=wrapper,
            working_dir=working_dir,
            container_command=starting,
            image_label=identity.reference or "the host (no container)",
            env_script=spec.env_script,
            env=variables.public,
            secret_file=secret_file,
            secret_names=tuple(sorted(variables.secret)),
            secrets_via=_secrets_via(spec) if starts_container else "",
            python=self._python(spec),
            job_file=job_file,
            exit_file=os.path.join(log_dir, EXIT_FILE),
            host_python_version=host_python_version(),
            host_site_dirs=container.b2box_site_dirs() if spec.in_container and not moving else [],
            # (a batch system that starts the container itself gets the digest checked here, at submission)
            sif_to_verify=identity.reference
            if identity.runtime == "apptainer" and identity.digest and not managed
            else "",
            pinned_digest=spec.pinned_digest,
            bootstrap=BOOTSTRAP,
            job_server_python="" if spec.in_container or not _forkable(spec) else sys.executable,
            job_client=client.__file__,
            server_lost_exit=client.EXIT_SERVER_LOST,
            rooted_binds=folders if moving else (),
        )
        write_script(wrapper, render(plan))
        self._plans[task.task_id] = (spec, plan)
        if transferred is not None:
            self._write_bundle(task, spec, job_file, wrapper, transferred, folders, log_dir)
        return PreparedJob(
            task_id=task.task_id,
            task=task,
            wrapper=wrapper,
            log_dir=log_dir,
            task_dir=task_dir,
            identity=identity,
            container_image=identity.reference if managed else "",
            container_mode=managed,
            transfer=moving,
            secret_file=secret_file,
        )

    @staticmethod
    def _fresh_folders(task: Any, *stale: str) -> tuple[str, str]:
        """The task's job and log folders, made where missing, without an earlier attempt's records."""
        task_dir, log_dir = layout.get_task_file_dir(task), layout.get_log_file_dir(task)
        for folder in (task_dir, log_dir):
            os.makedirs(folder, exist_ok=True)
        clear_records(log_dir, *stale)
        return task_dir, log_dir

    def _variables(self, task: Any, spec: EnvSpec) -> JobEnvironment:
        """The job's variables: settings that are secrets, ``pass_env``, ``B2BOX_*`` and the spec's ``env``."""
        _, file_secrets = self._settings_files()
        _, secret_settings = secrets.split_settings(portable_settings(), run_settings().secret_env)
        passed = {name: os.environ[name] for name in settings_of(task).environment.pass_env if name in os.environ}
        inherited = {name: value for name, value in os.environ.items() if name.startswith("B2BOX_")}
        named = settings_of(task).environment.secret_env
        public, secret = secrets.split({**file_secrets, **secret_settings, **passed, **inherited, **spec.env}, named)
        return JobEnvironment(public=public, secret=secret, passed=passed)

    def _write_job_file(
        self,
        task: Any,
        path: str,
        log_dir: str,
        identity: ImageIdentity,
        variables: JobEnvironment,
        kept: tuple[str, dict[str, Any]] | None,
        attempt: Attempt,
    ) -> None:
        """``job.json``: what the job must rebuild and run, with the settings its submitter read (no secrets)."""
        public_files, _ = self._settings_files()
        public_settings, _ = secrets.split_settings(portable_settings(), run_settings().secret_env)
        cls = type(task)
        JobSpec(
            task_id=task.task_id,
            module=cls.__module__,
            class_name=cls.__qualname__,
            family=task.task_family,
            params=task.to_str_params(),
            script=script_path() or "",
            log_dir=log_dir,
            backend=self.backend,
            image=identity.as_dict(),
            b2box_version=b2box_version.__version__,
            import_path=import_path_of(cls),
            settings=public_settings,
            settings_files=[[file, data] for file, data in public_files],
            requires=[required.task_id for required in luigi.task.flatten(task.requires())],
            outputs=[str(getattr(target, "path", target)) for target in luigi.task.flatten(task.output())],
            pass_env=sorted(variables.passed),
            result_record=list(kept) if kept else None,
            submitted_at=time.time(),
            request_memory=attempt.memory,
            attempt=attempt.number,
            b2luigi_names=b2luigi_names.installed(),
        ).write(path)

    @staticmethod
    def _write_bundle(
        task: Any,
        spec: EnvSpec,
        job_file: str,
        wrapper: str,
        transferred: list[str],
        folders: list[str],
        log_dir: str,
    ) -> None:
        """No shared filesystem: everything the job needs, in one bundle beside its logs."""
        script = script_path() or ""
        companions = [
            path for path in (script, os.path.join(os.path.dirname(script), "settings.json"), spec.env_script) if path
        ]
        returns = transfer.returned_folders(task, log_dir)
        transfer.write_bundle(
            os.path.join(log_dir, transfer.BUNDLE),
            [job_file, wrapper, *companions, *transferred],
            [*folders, *returns],
            wrapper,
            returns,
        )

    def _prepare_without_wrapper(self, task: Any) -> PreparedJob:
        """Where the site chooses the container (the grid), a job has no wrapper: only its folders are made and the
        records of an earlier attempt cleared."""
        task_dir, log_dir = self._fresh_folders(task, "stderr")
        return PreparedJob(task_id=task.task_id, task=task, wrapper="", log_dir=log_dir, task_dir=task_dir,
                           identity=ImageIdentity(runtime="grid"))  # fmt: skip

    def _transfer_wanted(self, task: Any, spec: EnvSpec) -> bool:
        """``transfer_files``: the job brings its files along (HTCondor, Apptainer; see b2box.batch.transfer)."""
        if not transfer.wanted(task):
            return False
        fix = "or remove transfer_files and keep result_dir, the logs and the script on a shared filesystem."
        if not self.capabilities.transfers_files:
            able = [name for name in names() if capabilities_of(backend_type(name)).transfers_files]
            listed = " or ".join(repr(name) for name in able) or "(none)"
            raise TaskDefinitionError(
                f"{task.task_id}: transfer_files works with batch_system {listed} only; use it there, {fix}"
            )
        if spec.runtime != "apptainer":
            raise TaskDefinitionError(
                f"{task.task_id}: transfer_files needs an Apptainer image with b2box inside "
                f"(b2box build-env --apptainer, image = 'env:NAME'), {fix}"
            )
        return True

    @staticmethod
    def _python(spec: EnvSpec) -> list[str]:
        executable = list(spec.executable) or (["python3"] if spec.in_container else [sys.executable])
        return [*spec.executable_prefix, *executable]


def _secrets_via(spec: EnvSpec) -> str:
    """How a job's container gets its secrets (see env/wrapper.py)."""
    return "docker" if spec.runtime == "docker" else spec.apptainer_command if spec.runtime == "apptainer" else ""


def _forkable(spec: EnvSpec) -> bool:
    """Whether a job may be forked from the warm job server: not when its environment is set up by an env_script
    or variables the interpreter reads only when it starts (PYTHONPATH, LD_LIBRARY_PATH ...), as a basf2 release's
    setup does; such a job starts a fresh Python after its setup."""
    return not spec.env_script and not any(name.startswith(("PYTHON", "LD_")) for name in spec.env)


def write_script(path: str, text: str) -> None:
    """An executable script only its user can read."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o700)
