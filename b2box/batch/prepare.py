"""From a task to a job every backend can run: ``job.json`` and the wrapper.

Preparing checks the task's environment spec and resolves its image to a
content digest (once per image per run), so a bad spec or a moved image is
reported for the task at fault before any job is submitted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import site
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from typing import Any

import luigi.task

from b2box import version as b2box_version
from b2box.batch import secrets, transfer
from b2box.batch.state import state_dir
from b2box.env import apptainer, docker
from b2box.env.identity import DigestMismatch, ImageIdentity
from b2box.env.spec import EnvSpec, spec_for_task
from b2box.env.wrapper import WrapperPlan, host_python_version, render
from b2box.errors import B2BoxError, TaskDefinitionError
from b2box.job import bootstrap, client
from b2box.job.files import EXIT_FILE, JOB_FILE, PROVENANCE_FILE, JobSpec
from b2box.job.group import GroupMember, write_group
from b2box.settings import layout
from b2box.settings.lookup import iter_global_settings, settings_files
from b2box.settings.paths import script_path
from b2box.settings.resolved import run_settings, settings_of

WRAPPER_FILE = "job.sh"
BOOTSTRAP = os.path.abspath(bootstrap.__file__)  # bound into containers with b2box's folders, bundled for transfers
STDOUT_FILE, STDERR_FILE = "stdout", "stderr"


@dataclass(frozen=True)
class PreparedJob:
    """A job ready to hand to a backend."""

    task_id: str
    task: Any
    wrapper: str
    log_dir: str
    task_dir: str
    identity: ImageIdentity
    # HTCondor starts this image itself (htcondor_container); empty: the wrapper starts its container
    container_image: str = ""
    container_mode: str = ""
    transfer: bool = False  # brings its files along (b2box.batch.transfer)
    secret_file: str = ""  # its secrets, until the wrapper reads them (b2box.batch.secrets)
    prepared_at: float = field(default_factory=time.time)

    @property
    def stdout(self) -> str:
        return os.path.join(self.log_dir, STDOUT_FILE)

    @property
    def stderr(self) -> str:
        return os.path.join(self.log_dir, STDERR_FILE)

    @property
    def exit_file(self) -> str:
        return os.path.join(self.log_dir, EXIT_FILE)

    @property
    def provenance_file(self) -> str:
        return os.path.join(self.log_dir, PROVENANCE_FILE)


def b2box_site_dirs() -> list[str]:
    """Folders that make this b2box importable: its site-packages and, for an editable install, its source."""
    folders = [os.path.dirname(os.path.dirname(os.path.abspath(b2box_version.__file__)))]
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        if os.path.isdir(folder) and folder not in folders:
            folders.append(folder)
    return folders


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

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._identities: dict[tuple[str, str, str], ImageIdentity] = {}
        self._plans: dict[str, tuple[EnvSpec, WrapperPlan]] = {}  # task id -> what its wrapper was made from
        self._files: tuple[list[tuple[str, dict[str, Any]]], dict[str, str]] | None = None

    def _settings_files(self) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """The settings files' contents for ``job.json`` (a job reads what the submitter read, not files that may
        have changed since), with secrets taken out: those reach the job as ``B2BOX_<KEY>`` variables."""
        if self._files is None:
            files: list[tuple[str, dict[str, Any]]] = []
            hidden: dict[str, str] = {}
            for path, data in reversed(settings_files()):  # nearer files last: their secrets win
                public, secret = secrets.split_settings(data)
                files.insert(0, (path, public))
                hidden.update(secret)
            self._files = (files, hidden)
        return self._files

    def identity(self, task: Any, spec: EnvSpec) -> ImageIdentity:
        key = (spec.runtime, spec.image, spec.pinned_digest)
        if key not in self._identities:
            try:
                if spec.runtime == "docker":
                    found = docker.resolve(spec.image, spec.pinned_digest)
                elif spec.runtime == "apptainer":
                    found = apptainer.resolve(spec.image, spec.apptainer_command, spec.pinned_digest)
                else:
                    found = ImageIdentity(runtime="none", runtime_version=f"python {sys.version.split()[0]}")
            except DigestMismatch as mismatch:
                raise B2BoxError(
                    f"{task.task_id}: refusing to run: {mismatch}. Rebuild the image or update "
                    "the pinned digest (image_digest setting or b2box.lock)."
                ) from None
            except B2BoxError as error:
                raise B2BoxError(f"{task.task_id}: setting 'image' ({spec.runtime}): {error}") from None
            self._identities[key] = found
        return self._identities[key]

    def describe(self, task: Any, submitted: float = 0.0) -> PreparedJob:
        """Where an already submitted job of ``task`` logs (submitted at ``submitted``), without writing anything."""
        return PreparedJob(
            task_id=task.task_id,
            task=task,
            wrapper=os.path.join(layout.get_task_file_dir(task), WRAPPER_FILE),
            log_dir=layout.get_log_file_dir(task),
            task_dir=layout.get_task_file_dir(task),
            identity=ImageIdentity(runtime="unknown"),
            prepared_at=submitted or time.time(),
        )

    def prepare(self, task: Any) -> PreparedJob:
        """Write the task's ``job.json`` and wrapper; errors (a bad spec, a folder that cannot be written) name the
        task and what to fix, and leave nothing submitted."""
        try:
            return self._prepare(task)
        except OSError as error:
            where = f" {error.filename}" if error.filename else ""
            raise TaskDefinitionError(
                f"{task.task_id}: cannot write the job's files{where} ({error.strerror}). Make log_dir and "
                "task_file_dir folders you can write to, with free space."
            ) from None

    def _prepare(self, task: Any) -> PreparedJob:
        if self.backend == "gbasf2":
            return self._prepare_for_the_grid(task)
        spec = spec_for_task(task)
        moving = self._transfer_wanted(task, spec)
        managed = self._managed_container(task, spec)
        identity = self.identity(task, spec)
        task_dir = layout.get_task_file_dir(task)
        log_dir = layout.get_log_file_dir(task)
        for folder in (task_dir, log_dir):
            os.makedirs(folder, exist_ok=True)
        for stale in (EXIT_FILE, PROVENANCE_FILE):
            path = os.path.join(log_dir, stale)
            if os.path.exists(path):
                os.remove(path)
        public_files, file_secrets = self._settings_files()
        public_settings, secret_settings = secrets.split_settings(portable_settings())
        secret_settings = {**file_secrets, **secret_settings}
        passed = {name: os.environ[name] for name in settings_of(task).environment.pass_env if name in os.environ}
        public_env, secret_env = secrets.split({**secret_settings, **passed, **self._environment(spec)})
        if secret_env and moving:
            raise TaskDefinitionError(
                f"{task.task_id}: {', '.join(sorted(secret_env))} look secret, and a job that brings its files "
                "along (transfer_files) cannot be given secrets without writing them into its bundle. Pass them "
                "another way (a token file on the worker nodes) or drop transfer_files."
            )
        secret_file = secrets.write_file(run_settings().secrets_dir, secret_env) if secret_env else ""
        script = script_path() or ""
        job_file = os.path.join(task_dir, JOB_FILE)
        wrapper = os.path.join(task_dir, WRAPPER_FILE)
        cls = type(task)
        JobSpec(
            task_id=task.task_id,
            module=cls.__module__,
            class_name=cls.__qualname__,
            family=task.task_family,
            params=task.to_str_params(),
            script=script,
            log_dir=log_dir,
            backend=self.backend,
            image=identity.as_dict(),
            b2box_version=b2box_version.__version__,
            import_path=import_path_of(cls),
            settings=public_settings,
            settings_files=[[path, data] for path, data in public_files],
            requires=[required.task_id for required in luigi.task.flatten(task.requires())],
            outputs=[str(getattr(target, "path", target)) for target in luigi.task.flatten(task.output())],
            pass_env=sorted(passed),
        ).write(job_file)
        working_dir = spec.working_dir or (os.path.dirname(script) if script else os.getcwd())
        # a job that brings its files along brings the bootstrap too (the image's own b2box does the rest)
        transferred = [*transfer.transferred_paths(task), BOOTSTRAP] if moving else None
        starts_container = spec.in_container and not managed
        folders = (
            self._job_folders(task, spec, working_dir, [task_dir, log_dir], transferred=transferred)
            if starts_container
            else []
        )
        plan = WrapperPlan(
            title=task.task_id,
            wrapper_path=wrapper,
            working_dir=working_dir,
            container_command=self._container_command(
                task, spec, identity, working_dir, folders, [wrapper, "--inside"], sorted(secret_env)
            )
            if starts_container
            else [],
            image_label=identity.reference or "the host (no container)",
            env_script=spec.env_script,
            env=public_env,
            secret_file=secret_file,
            secret_names=tuple(sorted(secret_env)),
            secrets_via=spec.apptainer_command if starts_container and spec.runtime == "apptainer" else "",
            python=self._python(spec),
            job_file=job_file,
            exit_file=os.path.join(log_dir, EXIT_FILE),
            host_python_version=host_python_version(),
            host_site_dirs=b2box_site_dirs() if spec.in_container and not moving else [],
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
        _write_script(wrapper, render(plan))
        self._plans[task.task_id] = (spec, plan)
        if transferred is not None:
            companions = [
                path
                for path in (script, os.path.join(os.path.dirname(script), "settings.json"), spec.env_script)
                if path
            ]
            returns = transfer.returned_folders(task, log_dir)
            transfer.write_bundle(
                os.path.join(log_dir, transfer.BUNDLE),
                [job_file, wrapper, *companions, *transferred],
                [*folders, *returns],
                wrapper,
                returns,
            )
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

    def _prepare_for_the_grid(self, task: Any) -> PreparedJob:
        """A grid project has no wrapper: the grid site chooses its container, gbasf2 its release. Only its
        folders are made and the records of an earlier attempt cleared."""
        task_dir, log_dir = layout.get_task_file_dir(task), layout.get_log_file_dir(task)
        for folder in (task_dir, log_dir):
            os.makedirs(folder, exist_ok=True)
        for stale in (EXIT_FILE, PROVENANCE_FILE, "stderr"):
            path = os.path.join(log_dir, stale)
            if os.path.exists(path):
                os.remove(path)
        return PreparedJob(task_id=task.task_id, task=task, wrapper="", log_dir=log_dir, task_dir=task_dir,
                           identity=ImageIdentity(runtime="grid"))  # fmt: skip

    def _transfer_wanted(self, task: Any, spec: EnvSpec) -> bool:
        """``transfer_files``: the job brings its files along (HTCondor, Apptainer; see b2box.batch.transfer)."""
        if not transfer.wanted(task):
            return False
        fix = "or remove transfer_files and keep result_dir, the logs and the script on a shared filesystem."
        if self.backend != "htcondor":
            raise TaskDefinitionError(
                f"{task.task_id}: transfer_files works with batch_system 'htcondor' only; use it there, {fix}"
            )
        if spec.runtime != "apptainer":
            raise TaskDefinitionError(
                f"{task.task_id}: transfer_files needs an Apptainer image with b2box inside "
                f"(b2box build-env --apptainer, image = 'env:NAME'), {fix}"
            )
        return True

    def group(self, members: list[PreparedJob]) -> PreparedJob:
        """One job for several prepared ones (``tasks_per_job``).

        Members that share their environment (image, env_script, variables, script) run in one container
        and one Python, a fork per task (:mod:`b2box.job.group`); others run their wrappers one after another.
        """
        first = members[0]
        plans = [self._plans.get(job.task_id) for job in members]
        if any(plan is None for plan in plans) or len({_environment_key(*plan) for plan in plans if plan}) > 1:
            return group_job(members)
        folder = _new_group_folder()
        group_file, script = os.path.join(folder, "group.json"), os.path.join(folder, WRAPPER_FILE)
        write_group(
            group_file,
            [
                GroupMember(
                    job=os.path.join(job.task_dir, JOB_FILE), stdout=job.stdout, stderr=job.stderr, exit=job.exit_file
                )
                for job in members
            ],
        )
        spec, plan = self._plans[first.task_id]
        container: list[str] = []
        if spec.in_container and not first.container_mode:
            folders = self._job_folders(
                first.task,
                spec,
                plan.working_dir,
                [folder, *(path for job in members for path in (job.task_dir, job.log_dir))],
                also=[job.task for job in members[1:]],
            )
            container = self._container_command(
                first.task, spec, first.identity, plan.working_dir, folders, [script, "--inside"]
            )
        _write_script(
            script,
            render(
                replace(
                    plan,
                    title=f"{len(members)} tasks in one job: {', '.join(job.task_id for job in members)}",
                    wrapper_path=script,
                    container_command=container,
                    job_file=group_file,
                    exit_file=os.path.join(folder, EXIT_FILE),
                    job_server_python="",
                    members=[(job.exit_file, job.stderr) for job in members],
                )
            ),
        )
        return _group_prepared(first, script, folder)

    def _managed_container(self, task: Any, spec: EnvSpec) -> str:
        """``htcondor_container``: whether HTCondor, not the wrapper, starts the task's Apptainer image."""
        mode = settings_of(task).batch.htcondor_container
        if self.backend != "htcondor" or mode == "wrapper" or not spec.in_container:
            return ""
        if spec.runtime != "apptainer":
            raise TaskDefinitionError(
                f"{task.task_id}: htcondor_container {mode!r} starts Apptainer images; "
                f"{spec.image!r} runs with {spec.runtime}. Use a SIF, a sandbox or docker://, "
                "or htcondor_container 'wrapper'."
            )
        if spec.binds or spec.extra_args or spec.gpus:
            raise TaskDefinitionError(
                f"{task.task_id}: with htcondor_container {mode!r} the site decides binds and "
                "options; remove binds, extra_args and gpus (use htcondor_settings) or use "
                "htcondor_container 'wrapper'."
            )
        return mode

    @staticmethod
    def _environment(spec: EnvSpec) -> dict[str, str]:
        """The job's variables: b2box settings from the environment, then the spec's ``env``."""
        inherited = {name: value for name, value in os.environ.items() if name.startswith("B2BOX_")}
        return {**inherited, **spec.env}

    @staticmethod
    def _python(spec: EnvSpec) -> list[str]:
        executable = list(spec.executable) or (["python3"] if spec.in_container else [sys.executable])
        return [*spec.executable_prefix, *executable]

    def _job_folders(
        self,
        task: Any,
        spec: EnvSpec,
        working_dir: str,
        job_dirs: list[str],
        also: list[Any] | None = None,
        transferred: list[str] | None = None,
    ) -> list[str]:
        """The folders a job's container binds: outputs, the job's own, the working, env_script and script folders,
        and (shared filesystem) b2box's installation or (no shared filesystem) what the job brings along."""
        folders = [
            layout.task_result_dir(task),
            *(layout.task_result_dir(other) for other in also or []),
            *job_dirs,
            working_dir,
        ]
        if spec.env_script and os.path.isfile(spec.env_script):
            folders.append(os.path.dirname(spec.env_script))
        script = script_path()
        if script:
            folders.append(os.path.dirname(script))
        if transferred is None:
            folders += b2box_site_dirs()
        else:
            folders += [path if os.path.isdir(path) else os.path.dirname(path) for path in transferred]
        for folder in folders:
            os.makedirs(folder, exist_ok=True)
        return _unique(folders)

    def _container_command(
        self,
        task: Any,
        spec: EnvSpec,
        identity: ImageIdentity,
        working_dir: str,
        folders: list[str],
        inner: list[str],
        pass_env: list[str] | None = None,
    ) -> list[str]:
        """The command that starts the container, binding ``folders`` and the spec's own binds; the variables named
        in ``pass_env`` go in by name (their values are the wrapper's, never written into it)."""
        if not spec.in_container:
            return []
        binds = _unique([*folders, *spec.binds])
        if spec.runtime == "docker":
            name = "b2box-" + hashlib.sha1(task.task_id.encode()).hexdigest()[:16] + f"-{os.getpid()}"
            extra = [word for variable in pass_env or [] for word in ("--env", variable)] + list(spec.extra_args)
            return docker.command(identity, binds, working_dir, spec.gpus, extra, name, inner)
        if spec.runtime == "apptainer":
            return apptainer.command(
                identity, spec.apptainer_command, binds, working_dir, spec.gpus, list(spec.extra_args), inner
            )
        raise TaskDefinitionError(f"{task.task_id}: unknown runtime {spec.runtime!r}")


def _forkable(spec: EnvSpec) -> bool:
    """Whether a job may be forked from the warm job server: not when its environment is set up by an env_script
    or variables the interpreter reads only when it starts (PYTHONPATH, LD_LIBRARY_PATH ...), as a basf2 release's
    setup does; such a job starts a fresh Python after its setup."""
    return not spec.env_script and not any(name.startswith(("PYTHON", "LD_")) for name in spec.env)


def _write_script(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o700)


def _environment_key(spec: EnvSpec, plan: WrapperPlan) -> str:
    """What must be equal for jobs to share a container and a Python (the script is the run's own)."""
    return json.dumps([spec.model_dump(mode="json"), plan.working_dir, plan.env], sort_keys=True)


def _unique(folders: list[str]) -> list[str]:
    """Drop duplicates and folders already inside another bound folder."""
    kept: list[str] = []
    for folder in sorted({os.path.normpath(f) for f in folders}, key=len):
        source = folder.split(":", 1)[0]
        if not any(source == k or source.startswith(k.rstrip("/") + "/") for k in kept if ":" not in k):
            kept.append(folder)
    return kept


GROUP_FOLDER = "groups"


def group_job(members: list[PreparedJob]) -> PreparedJob:
    """One job that runs several prepared jobs one after another (``tasks_per_job``).

    Each member keeps its own wrapper, logs and exit record, so each task is
    judged on its own; what is saved is the batch system's per-job cost.
    """
    folder = _new_group_folder()
    script = os.path.join(folder, WRAPPER_FILE)
    lines = [
        "#!/bin/bash",
        f"# b2box group job: {len(members)} tasks, one after another (tasks_per_job)",
        "# All members report the same batch job id.",
        'export B2BOX_JOB_ID="${B2BOX_JOB_ID:-${LSB_JOBID:-${SLURM_JOB_ID:-local-$$}}}"',
        "b2box_status=0",
    ]
    for member in members:
        lines.append(
            f"/bin/bash {shlex.quote(member.wrapper)} > {shlex.quote(member.stdout)} "
            f"2> {shlex.quote(member.stderr)} || b2box_status=1"
        )
    lines += ['exit "$b2box_status"', ""]
    _write_script(script, "\n".join(lines))
    return _group_prepared(members[0], script, folder)


def _new_group_folder() -> str:
    folder = os.path.join(state_dir(), GROUP_FOLDER)
    os.makedirs(folder, exist_ok=True)
    return tempfile.mkdtemp(prefix="group-", dir=folder)


def _group_prepared(first: PreparedJob, script: str, folder: str) -> PreparedJob:
    """The group job as backends see it: named after its first task, logging into its own folder."""
    return PreparedJob(
        task_id=f"group:{first.task_id}",
        task=first.task,
        wrapper=script,
        log_dir=folder,
        task_dir=folder,
        identity=first.identity,
        container_image=first.container_image,
        container_mode=first.container_mode,
    )
