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
    secret_file: str = ""  # the job's secrets, until it reads them: removed whoever judges or cancels the job


def path_of(task: Any) -> str:
    """Where the task's job id is kept."""
    return _path(task)


def _path(task: Any) -> str:
    return os.path.join(layout.get_task_file_dir(task), LEDGER_FILE)


def record(task: Any, backend: str, job_id: str, secret_file: str = "") -> None:
    """Write the task's job id now, before anything else can go wrong."""
    path = _path(task)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    entry = {"backend": backend, "job_id": job_id, "submitted": time.time(), "secret_file": secret_file}
    write_json(path, entry)


def lookup(task: Any) -> Entry | None:
    """The job an earlier run recorded for ``task``, if any."""
    data = read_json(_path(task))
    if data is None or not {"backend", "job_id"} <= data.keys():
        return None
    return Entry(
        backend=str(data["backend"]),
        job_id=str(data["job_id"]),
        submitted=float(data.get("submitted", 0)),
        secret_file=str(data.get("secret_file", "")),
    )


def forget(task: Any) -> None:
    """The task's job is judged: nothing is left to re-attach to."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(_path(task))


# -- intents: submissions that may have reached the batch system before their job ids were known ----------------

INTENTS_FOLDER = "submitting"


@dataclass(frozen=True)
class Intent:
    """One job about to be submitted: b2box's name for it, where it logs, the tasks it runs."""

    backend: str
    job: str  # the prepared job's id: its task's id, or group:<first task id> for several tasks in one job
    log_dir: str
    tasks: tuple[str, ...]
    written: float
    secret_files: tuple[tuple[str, str], ...] = ()  # (task, its secrets file) for the tasks that have one

    def secret_file_of(self, task_id: str) -> str:
        return dict(self.secret_files).get(task_id, "")


def write_intents(folder: str, backend: str, jobs: list[tuple[str, str, dict[str, str]]]) -> tuple[str, list[Intent]]:
    """Before a submission: the jobs about to go to ``backend`` ((job, log folder, {task id: its secrets file or
    empty}) each), in one new file under ``<folder>/submitting``; its path and the intents. A run killed before it
    recorded the job ids finds its submissions again through this file (:func:`read_intents`)."""
    target = os.path.join(folder, INTENTS_FOLDER)
    os.makedirs(target, exist_ok=True)
    path = os.path.join(target, f"{time.time_ns()}-{os.getpid()}.json")
    written = time.time()
    records = [{"job": job, "log_dir": log, "tasks": tasks} for job, log, tasks in jobs]
    write_json(path, {"backend": backend, "written": written, "jobs": records})
    intents = [_intent(backend, written, record) for record in records]
    return path, intents


def _intent(backend: str, written: float, record: dict[str, Any]) -> Intent:
    tasks = record.get("tasks", {})
    return Intent(
        backend=backend,
        job=str(record.get("job", "")),
        log_dir=str(record.get("log_dir", "")),
        tasks=tuple(str(task) for task in tasks),
        written=written,
        secret_files=tuple((str(task), str(path)) for task, path in tasks.items() if path),
    )


def read_intents(folder: str) -> dict[str, list[Intent]]:
    """Every intent file under ``<folder>/submitting`` (path -> its intents)."""
    found: dict[str, list[Intent]] = {}
    target = os.path.join(folder, INTENTS_FOLDER)
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(target)):
            path = os.path.join(target, name)
            data = read_json(path)
            if data is None or not name.endswith(".json"):
                continue
            backend, written = str(data.get("backend", "")), float(data.get("written", 0))
            found[path] = [_intent(backend, written, record) for record in data.get("jobs", [])]
    return found


def drop_intents(path: str) -> None:
    """The submission's job ids are recorded (or it was refused): its intents are no longer needed."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
