"""A job's container: which folders it binds and the command line that starts it (Docker or Apptainer).

Every folder a job needs is bound at the same path inside as outside: the task's result folders, the job's own
folders, the working folder, the folders of the env_script and of the workflow script, and either b2box's own
installation (a shared filesystem) or what the job brought along (no shared filesystem). Folders inside another
bound folder are left out; nothing is bound twice.

Binds are given in each runtime's ``--mount type=bind,...`` form, whose fields are CSV: a path holding ``:``,
``,``, quotes or a line break is quoted, never split (``-v src:dst`` and Apptainer's ``--bind`` split paths on
``:`` and ``,``). A bind of the ``binds`` setting is ``/host`` or ``/host:/container``, so there a ``:`` separates.
"""

from __future__ import annotations

import hashlib
import os
import site
from collections.abc import Sequence
from typing import Any

from b2box.env import apptainer, docker
from b2box.env.identity import ImageIdentity
from b2box.env.spec import EnvSpec
from b2box.errors import TaskDefinitionError
from b2box.settings import layout
from b2box.settings.paths import script_path

SECRETS_FILE_VARIABLE = "_B2BOX_SECRETS_FILE"  # inside a Docker job: its secrets file, read and removed by the job


def b2box_site_dirs() -> list[str]:
    """Folders that make this b2box importable: its site-packages and, for an editable install, its source."""
    folders = [os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))]  # above b2box/env/
    for folder in [*site.getsitepackages(), site.getusersitepackages()]:
        if os.path.isdir(folder) and folder not in folders:
            folders.append(folder)
    return folders


def job_folders(
    tasks: Sequence[Any],
    spec: EnvSpec,
    working_dir: str,
    job_dirs: Sequence[str],
    transferred: Sequence[str] | None = None,
) -> list[str]:
    """The folders a job's container binds (created where missing): the result folders of ``tasks``, the job's own
    ``job_dirs``, the working, env_script and script folders, and b2box's installation (shared filesystem) or the
    ``transferred`` files' folders (no shared filesystem)."""
    folders = [*(layout.task_result_dir(task) for task in tasks), *job_dirs, working_dir]
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
    return unique_folders(folders)


def command(
    task_id: str,
    spec: EnvSpec,
    identity: ImageIdentity,
    working_dir: str,
    folders: Sequence[str],
    inner: Sequence[str],
    secrets_file: str = "",
    memory: int | None = None,
) -> list[str]:
    """The command that starts the container, binding ``folders`` and the spec's own binds, and runs bash with
    ``inner``. A Docker job's ``secrets_file`` is bound in (its own folder), and the job reads it there: the values
    never reach Docker's record of the container (Apptainer's come through the wrapper's environment). A Docker
    container is held to ``memory`` bytes (no swap beyond it), unless the spec's own ``--memory`` says otherwise."""
    if not spec.in_container:
        return []
    binds = unique_mounts([*((folder, folder) for folder in folders), *(split_bind(bind) for bind in spec.binds)])
    if spec.runtime == "docker":
        name = docker_name(task_id)
        extra = list(spec.extra_args)
        if secrets_file:
            binds.append((os.path.dirname(secrets_file), os.path.dirname(secrets_file)))
            extra = ["--env", f"{SECRETS_FILE_VARIABLE}={secrets_file}", *extra]
        if memory and not own_option(extra, "--memory", "-m"):
            extra = ["--memory", str(memory), "--memory-swap", str(memory), *extra]
        return docker.command(identity, binds, working_dir, spec.gpus, extra, name, list(inner))
    if spec.runtime == "apptainer":
        return apptainer.command(
            identity, spec.apptainer_command, binds, working_dir, spec.gpus, list(spec.extra_args), list(inner)
        )
    raise TaskDefinitionError(f"{task_id}: unknown runtime {spec.runtime!r}")


def own_option(words: Sequence[str], *names: str) -> bool:
    """Whether ``words`` (a runtime's or a batch system's options) already say ``names`` (``--memory 2g``,
    ``--memory=2g``, ``-m 2g``)."""
    return any(word in names or word.split("=", 1)[0] in names for word in words)


def docker_name(task_id: str) -> str:
    """The name of a Docker job's container, made by this process (so that it can remove it, should the job be
    stopped in a way the container does not notice)."""
    return "b2box-" + hashlib.sha1(task_id.encode()).hexdigest()[:16] + f"-{os.getpid()}"


def unique_folders(folders: Sequence[str]) -> list[str]:
    """Drop duplicates and folders already inside another folder of the list."""
    return [source for source, _ in unique_mounts([(folder, folder) for folder in folders])]


def split_bind(bind: str) -> tuple[str, str]:
    """``/host`` or ``/host:/container`` (the ``binds`` setting's form) as (source, target)."""
    source, _, target = bind.partition(":")
    return source, target or source


def unique_mounts(mounts: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop duplicates, and folders bound at their own path that lie inside another folder bound so."""
    kept: list[tuple[str, str]] = []
    normal = {(os.path.normpath(source), os.path.normpath(target)) for source, target in mounts}
    for source, target in sorted(normal, key=lambda mount: (len(mount[0]), mount)):
        inside = any(source == k or source.startswith(k.rstrip("/") + "/") for k, t in kept if k == t)
        if not (source == target and inside):
            kept.append((source, target))
    return kept
