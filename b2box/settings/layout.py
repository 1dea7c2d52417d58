"""Where a task's files go: ``<result_dir>/<param>=<value>/.../<name>``.

The layout is b2luigi's, to the character, so results made by b2luigi are
found complete by b2box and the other way round. Logs go to
``<log_dir>/<params>/<TaskFamily>/`` and wrapper/submit files to
``<task_file_dir>/<params incl. hidden>/<TaskFamily>/``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from b2box.errors import TaskDefinitionError
from b2box.settings.resolved import settings_of

MAX_NAME_BYTES = 255  # the longest file or folder name Linux file systems take
_SAFE_CHARACTERS = MAX_NAME_BYTES // 4  # a name this short is short enough in any encoding (UTF-8: <= 4 bytes each)


def get_serialized_parameters(task: Any, need_hidden: bool = False) -> OrderedDict[str, str]:
    """``{name: value as it appears in paths}`` for the task's visible parameters."""
    serialized: OrderedDict[str, str] = OrderedDict()
    for name, parameter in task.get_params():
        if not parameter.significant or (getattr(parameter, "hidden", False) and not need_hidden):
            continue
        value = getattr(task, name)
        if hasattr(parameter, "serialize_hashed"):
            serialized[name] = parameter.serialize_hashed(value)
        else:
            serialized[name] = parameter.serialize(value)
    return serialized


def parameter_folders(task: Any, need_hidden: bool = False) -> list[str]:
    """The ``param=value`` folder names, in parameter order."""
    folders_setting = settings_of(task).folders
    separator = folders_setting.parameter_separator
    with_names = folders_setting.use_parameter_name_in_output
    folders = []
    for name, value in get_serialized_parameters(task, need_hidden=need_hidden).items():
        if value != os.path.basename(value):
            raise TaskDefinitionError(
                f"{task.task_family}: parameter {name}{separator}{value!r} cannot be a folder name "
                f"(it contains '{os.path.sep}'). Declare it with hashed=True, "
                f"e.g. b2luigi.Parameter(hashed=True)."
            )
        folder = f"{name}{separator}{value}" if with_names else value
        if folder in ("", ".", ".."):
            raise TaskDefinitionError(
                f"{task.task_family}: parameter {name}={value!r} would put outputs "
                f"{'outside' if folder == '..' else 'directly in'} the folder above it "
                "(use_parameter_name_in_output is off). Choose another value, declare the parameter with "
                "hashed=True, or turn use_parameter_name_in_output on."
            )
        if len(folder) > _SAFE_CHARACTERS and len(folder.encode()) > MAX_NAME_BYTES:
            raise TaskDefinitionError(
                f"{task.task_family}: parameter {name} makes the folder name {folder[:40]!r}... "
                f"{len(folder.encode())} bytes long; file systems allow {MAX_NAME_BYTES}. Declare it with "
                "hashed=True (e.g. b2luigi.Parameter(hashed=True)), which puts a hash of the value into paths."
            )
        folders.append(folder)
    return folders


def task_result_dir(task: Any) -> str:
    """The task's ``result_dir`` setting, absolute."""
    return settings_of(task).folders.result_dir


def create_output_file_name(
    task: Any, base_filename: str, result_dir: str | None = None, need_hidden: bool = False
) -> str:
    """``<result_dir>/<param>=<value>/.../<base_filename>``."""
    base = result_dir or task_result_dir(task)
    return os.path.join(base, *parameter_folders(task, need_hidden=need_hidden), base_filename)


def get_log_file_dir(task: Any) -> str:
    """``<log_dir>/<params>/<TaskFamily>/`` unless the task defines ``get_log_file_dir``."""
    if hasattr(task, "get_log_file_dir"):
        return str(task.get_log_file_dir())
    return create_output_file_name(task, task.get_task_family() + "/", result_dir=settings_of(task).folders.log_dir)


def get_task_file_dir(task: Any) -> str:
    """``<task_file_dir>/<params incl. hidden>/<TaskFamily>/`` unless the task overrides it."""
    if hasattr(task, "get_task_file_dir"):
        return str(task.get_task_file_dir())
    base = settings_of(task).folders.task_file_dir
    return create_output_file_name(task, task.get_task_family() + "/", result_dir=base, need_hidden=True)
