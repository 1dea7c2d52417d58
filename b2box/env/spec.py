"""Where a task runs: its environment spec.

A task declares its environment through settings (task attributes,
``set_setting`` or ``settings.json``): ``image``, ``runtime``, ``env_script``,
``env``, ``binds``, ``gpus``, ``extra_args``; b2luigi's Apptainer names are
folded in when the settings are resolved (:mod:`b2box.settings.resolved`).
Here the stated environment becomes a checked :class:`EnvSpec`: ``env:NAME``
images resolve through ``b2box.lock``, ``runtime = "auto"`` is decided, and
every field is validated when the job is prepared, before anything is
submitted, with errors that name the task and the field.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from b2box.commands import first_on_path
from b2box.env.build import ENV_PREFIX, resolve_env_image
from b2box.errors import B2BoxError, SettingsError, TaskDefinitionError
from b2box.settings.paths import script_dir
from b2box.settings.resolved import settings_of

Runtime = Literal["apptainer", "docker", "none"]


class EnvSpec(BaseModel):
    """The resolved environment of one task's jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    runtime: Runtime = "none"
    image: str = ""
    env_script: str = ""
    env: dict[str, str] = {}
    binds: tuple[str, ...] = ()
    gpus: bool = False
    extra_args: tuple[str, ...] = ()
    working_dir: str = ""
    executable: tuple[str, ...] = ()
    executable_prefix: tuple[str, ...] = ()
    pinned_digest: str = ""
    apptainer_command: str = "apptainer"

    @field_validator("env")
    @classmethod
    def _names_are_shell_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not name or not (name[0].isalpha() or name[0] == "_") or not all(c.isalnum() or c == "_" for c in name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return env

    @field_validator("binds")
    @classmethod
    def _binds_are_absolute(cls, binds: tuple[str, ...]) -> tuple[str, ...]:
        for bind in binds:
            source = bind.split(":", 1)[0]
            if not os.path.isabs(source):
                raise ValueError(f"bind {bind!r} must start with an absolute path")
        return binds

    @property
    def in_container(self) -> bool:
        return self.runtime != "none"


def _runtime_for(image: str, requested: str) -> Runtime:
    """``auto``: no image means no container; SIFs, sandboxes and ``docker://`` are Apptainer's."""
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if not image:
        return "none"
    if image.startswith(("docker://", "docker-daemon://", "oras://", "library://")):
        return "apptainer"
    if image.endswith(".sif") or os.path.isdir(image):
        return "apptainer"
    return "docker"


def spec_for_task(task: Any) -> EnvSpec:
    """The task's validated environment, from its resolved settings; errors name the task and field."""
    try:
        stated = settings_of(task).environment
    except SettingsError as error:
        raise TaskDefinitionError(str(error)) from None
    image, requested, locked_digest = stated.image, stated.runtime, ""
    if image.startswith(ENV_PREFIX):
        try:
            image, locked_digest, requested = resolve_env_image(image, requested, script_dir())
        except B2BoxError as error:
            raise TaskDefinitionError(f"{task.task_id}: {error}") from None
    raw: dict[str, Any] = {
        "runtime": _runtime_for(image, requested)
        if requested in ("auto", "apptainer", "docker", "none")
        else requested,
        "image": image,
        "env_script": stated.env_script,
        "env": dict(stated.env),
        "binds": stated.binds,
        "gpus": stated.gpus,
        "extra_args": stated.extra_args,
        "working_dir": stated.working_dir,
        "executable": stated.executable or (),
        "executable_prefix": stated.executable_prefix,
        "pinned_digest": stated.image_digest or locked_digest,
        "apptainer_command": stated.apptainer_cmd or _default_apptainer(),
    }
    try:
        spec = EnvSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise TaskDefinitionError(
            f"{task.task_id}: environment setting '{field}': {first['msg']} (got {first.get('input')!r}). "
            "Fix it on the task, in set_setting or in settings.json."
        ) from None
    if spec.runtime != "none" and not spec.image:
        raise TaskDefinitionError(f"{task.task_id}: runtime '{spec.runtime}' needs an image; set 'image'.")
    if spec.env_script and not spec.in_container and not os.path.isfile(spec.env_script):
        raise TaskDefinitionError(
            f"{task.task_id}: env_script {spec.env_script} does not exist. Create it, or fix the setting 'env_script'"
            " (a relative path counts from the workflow's folder)."
        )
    # In a container the env_script may also be a file of the image itself (bound only when it is on the host).
    return spec


def _default_apptainer() -> str:
    """Apptainer's command here (its older name where only that is installed)."""
    return first_on_path(("apptainer", "singularity"), os.environ.get("PATH", "")) or "apptainer"


def host_python_executable() -> str:
    """The interpreter b2box itself runs with (for jobs without a container)."""
    return sys.executable
