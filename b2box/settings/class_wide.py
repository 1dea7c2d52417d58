"""Settings sections resolved once for every task of a class, where no task of the class can differ.

A hundred thousand tasks of one family almost always share their folders, environment and batch system: resolving
them per task was most of what building a large graph cost. A section is shared when the class defines none of its
keys per task (a property, a luigi parameter, any other descriptor, or a value set on the instance); it is made
again when the settings change (their generation) or when what else it depends on does (its context: the script's
folder for relative folders).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Section = TypeVar("Section")

# The keys each shared section reads (with b2luigi's older names of them).
ENVIRONMENT_KEYS = frozenset(
    {"image", "apptainer_image", "runtime", "executable", "env_script", "working_dir", "binds", "apptainer_mounts",
     "env", "gpus", "extra_args", "apptainer_additional_params", "executable_prefix", "cmd_prefix", "image_digest",
     "apptainer_cmd", "pass_env", "secret_env"}
)  # fmt: skip
BATCH_SYSTEM_KEYS = frozenset({"batch_system"})
FOLDER_KEYS = frozenset(
    {"result_dir", "result_path", "log_dir", "log_folder", "task_file_dir", "parameter_separator",
     "use_parameter_name_in_output", "scratch_dir"}
)  # fmt: skip
TARGET_KEYS = frozenset({"default_task_target_class", "target_class_kwargs"})

_kept: dict[tuple[type, frozenset[str]], tuple[tuple[int, str], Any]] = {}
_instance_dependent: dict[tuple[type, frozenset[str]], bool] = {}


def shared(task: Any, keys: frozenset[str], context: tuple[int, str], make: Callable[[], Section]) -> Section | None:
    """``make()``, made once per class and ``context`` (the settings' generation and what else it depends on); None
    when the task's class or the task itself defines one of ``keys`` per task."""
    if keys & getattr(task, "__dict__", {}).keys() or _per_instance(type(task), keys):
        return None
    place = (type(task), keys)
    kept = _kept.get(place)
    if kept is None or kept[0] != context:
        kept = _kept[place] = (context, make())
    found: Section = kept[1]
    return found


def _per_instance(cls: type, keys: frozenset[str]) -> bool:
    """Whether a task class defines one of ``keys`` so that it may differ between its tasks (a property, a luigi
    parameter, any other descriptor); cached per class."""
    found = _instance_dependent.get((cls, keys))
    if found is None:
        found = any(
            (key in klass.__dict__ and hasattr(klass.__dict__[key], "__get__"))
            or _is_parameter(klass.__dict__.get(key))
            for klass in cls.__mro__
            for key in keys
        )
        _instance_dependent[(cls, keys)] = found
    return found


def _is_parameter(value: Any) -> bool:
    return type(value).__name__.endswith("Parameter") or hasattr(value, "_get_value_from_config")
