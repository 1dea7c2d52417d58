"""The contract between the submitting side and a job: ``job.json`` in, ``exit.json`` and ``provenance.json`` out.

The submitting side writes :class:`JobSpec` (the task's module, class and
parameters, where to log, what image it was meant to run in); the job reads
it. Both sides write JSON atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

JOB_FILE = "job.json"
PROVENANCE_FILE = "provenance.json"
EXIT_FILE = "exit.json"
EXIT_TASK_FAILED, EXIT_BAD_JOB = 1, 73


@dataclass
class JobSpec:
    """What a job must run, and where it reports."""

    task_id: str
    module: str
    class_name: str
    family: str
    params: dict[str, str]
    script: str
    log_dir: str
    backend: str
    image: dict[str, Any] = field(default_factory=dict)
    b2box_version: str = ""
    import_path: str = ""  # the sys.path entry the task's module was imported from
    settings: dict[str, Any] = field(default_factory=dict)  # set_setting values of the submitting process
    # what the task was on the submitting side, so the job can tell that it rebuilt the same task
    requires: list[str] = field(default_factory=list)  # task ids of its requirements
    outputs: list[str] = field(default_factory=list)  # its output paths
    pass_env: list[str] = field(default_factory=list)  # variables handed from the submitting shell (pass_env)
    settings_files: list[Any] | None = None  # [path, content] of the settings files the submitter read

    @property
    def provenance_path(self) -> str:
        return os.path.join(self.log_dir, PROVENANCE_FILE)

    @property
    def exit_path(self) -> str:
        return os.path.join(self.log_dir, EXIT_FILE)

    def write(self, path: str) -> None:
        write_json(path, asdict(self))

    @classmethod
    def read(cls, path: str) -> JobSpec:
        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


def write_json(path: str, data: Any) -> None:
    """Write JSON atomically: readers never see half a file."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
