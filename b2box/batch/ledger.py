"""Job ids on disk, written the moment they are known, so nothing is submitted twice.

Each submitted task gets ``<task_file_dir>/<params>/<Family>/batch_job.json``
(backend, job id, time). When the submitting process is killed and the
workflow is started again, b2box finds these, asks the batch system about
them in one query per backend, and re-attaches to the jobs still queued or
running instead of submitting duplicates; jobs that finished meanwhile are
judged by their exit records as usual.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any

from b2box.job.files import read_json, write_json
from b2box.settings import layout

LEDGER_FILE = "batch_job.json"


@dataclass(frozen=True)
class Entry:
    """One submitted job of a task, as recorded."""

    backend: str
    job_id: str
    submitted: float


def path_of(task: Any) -> str:
    """Where the task's job id is kept."""
    return _path(task)


def _path(task: Any) -> str:
    return os.path.join(layout.get_task_file_dir(task), LEDGER_FILE)


def record(task: Any, backend: str, job_id: str) -> None:
    """Write the task's job id now, before anything else can go wrong."""
    path = _path(task)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"backend": backend, "job_id": job_id, "submitted": time.time()})


def lookup(task: Any) -> Entry | None:
    """The job an earlier run recorded for ``task``, if any."""
    data = read_json(_path(task))
    if data is None or not {"backend", "job_id"} <= data.keys():
        return None
    return Entry(backend=str(data["backend"]), job_id=str(data["job_id"]), submitted=float(data.get("submitted", 0)))


def forget(task: Any) -> None:
    """The task's job is judged: nothing is left to re-attach to."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(_path(task))
