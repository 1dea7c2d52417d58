"""A job as backends see it: the task, its wrapper and where it logs, ready to hand to a batch system."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from b2box.env.identity import ImageIdentity
from b2box.job.files import EXIT_FILE, PROVENANCE_FILE
from b2box.settings import layout

WRAPPER_FILE = "job.sh"
STDOUT_FILE, STDERR_FILE = "stdout", "stderr"
PID_FILE = "job.pid"  # a local job's own id, written by the job when it starts (env/wrapper.py)


@dataclass(frozen=True)
class PreparedJob:
    """A job ready to hand to a backend."""

    task_id: str
    task: Any
    wrapper: str
    log_dir: str
    task_dir: str
    identity: ImageIdentity
    # the batch system starts this image itself (a backend's managed_container); empty: the wrapper starts it
    container_image: str = ""
    container_mode: str = ""
    transfer: bool = False  # brings its files along (b2box.batch.transfer)
    secret_file: str = ""  # its secrets, until the wrapper reads them (b2box.batch.secrets)
    # (identity file, record) kept beside the outputs (b2box.results); written by the job, or the backend itself
    result_record: tuple[str, dict[str, Any]] | None = None
    prepared_at: float = field(default_factory=time.time)
    request_memory: int | None = None  # bytes the batch system is asked to hold it to (None: no request)
    attempt: int = 1

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


def submitted_job(task: Any, submitted: float = 0.0, secret_file: str = "") -> PreparedJob:
    """Where an already submitted job of ``task`` logs (submitted at ``submitted``), without writing anything: how
    a run that re-attaches to an earlier run's job knows it (and its secrets file, if it has one left)."""
    return PreparedJob(
        task_id=task.task_id,
        task=task,
        wrapper=os.path.join(layout.get_task_file_dir(task), WRAPPER_FILE),
        log_dir=layout.get_log_file_dir(task),
        task_dir=layout.get_task_file_dir(task),
        identity=ImageIdentity(runtime="unknown"),
        secret_file=secret_file,
        prepared_at=submitted or time.time(),
    )


def clear_records(log_dir: str, *names: str) -> None:
    """Remove an earlier attempt's records (exit record, provenance ...) from a job's log folder."""
    for name in (EXIT_FILE, PROVENANCE_FILE, PID_FILE, *names):
        path = os.path.join(log_dir, name)
        if os.path.exists(path):
            os.remove(path)


def start_wrapper(job: PreparedJob, environment: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start the job's wrapper here, in a session of its own (it outlives a submitter that is killed), its output in
    the job's log files."""
    with open(job.stdout, "wb") as stdout, open(job.stderr, "wb") as stderr:
        return subprocess.Popen(
            ["/bin/bash", job.wrapper],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=dict(environment),
        )
