"""The contract between the submitting side and a job: ``job.json`` in, ``exit.json`` and ``provenance.json`` out.

The submitting side writes :class:`JobSpec` (the task's module, class and
parameters, where to log, what image it was meant to run in); the job reads
it. A job's end is told by its :class:`ExitRecord`. Both sides write JSON
atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from b2box.jsonio import read_json, write_json

__all__ = ["read_json", "write_json"]  # (re-exported: the job's files are read and written with them)

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
    result_record: list[Any] | None = None  # [identity file, record]: kept beside the outputs when they are committed
    submitted_at: float = 0.0  # when it was handed to the batch system (epoch seconds): the job knows its queue wait
    request_memory: int | None = None  # bytes the batch system holds it to (None: no request)
    attempt: int = 1  # 2: the first resubmission
    b2luigi_names: bool = False  # the submitter ran the script with b2luigi's module names as b2box's: so does the job

    @property
    def provenance_path(self) -> str:
        return os.path.join(self.log_dir, PROVENANCE_FILE)

    @property
    def exit_path(self) -> str:
        return os.path.join(self.log_dir, EXIT_FILE)

    def write(self, path: str) -> None:
        write_json(path, dict(vars(self)))  # (asdict would deep-copy every value first, for nothing)

    @classmethod
    def read(cls, path: str) -> JobSpec:
        with open(path, encoding="utf-8") as handle:
            return cls(**json.load(handle))


@dataclass(frozen=True)
class ExitRecord:
    """How a job ended, in its own words (``exit.json``), known even when the batch system has forgotten the job.

    Written by the job's wrapper (``env/templates/job.sh``, in bash, with these three keys), by a group job for
    each of its tasks, and by a backend that runs the job's work itself (gbasf2, for a grid project); read when a
    finished job is judged.
    """

    exit_code: int | None  # None: the record holds no usable exit code
    end_time: str
    host: str

    @classmethod
    def now(cls, exit_code: int) -> ExitRecord:
        """The record of a job ending here and now."""
        end = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return cls(exit_code=exit_code, end_time=end, host=socket.gethostname())

    def write(self, path: str) -> None:
        write_json(path, dict(vars(self)))  # (asdict would deep-copy every value first, for nothing)

    @classmethod
    def read(cls, path: str) -> ExitRecord | None:
        """The record at ``path``, or None when there is none (the job was killed, or never started)."""
        data = read_json(path)
        if data is None:
            return None
        code = data.get("exit_code")
        return cls(
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            end_time=str(data.get("end_time", "")),
            host=str(data.get("host", "")),
        )
