"""``batch_system = "custom"``: a site's own batch system, written as a b2luigi ``BatchProcess`` plug-in.

b2luigi documents a task's ``process_class`` (a subclass of its ``BatchProcess`` with ``start_job``,
``get_job_status`` and ``terminate_job``) as the way to add a batch system. :class:`ProcessBackend` drives
such classes through b2box's backend protocol, so a plug-in written for b2luigi keeps working: import
``BatchProcess``, ``JobStatus``, ``create_executable_wrapper`` and ``get_log_file_dir`` from
``b2box.batch`` instead of b2luigi's modules. The executable a plug-in submits is b2box's job wrapper,
so the job runs in the task's container and leaves b2box's exit record and provenance.

A plug-in knows its jobs only as objects in memory: a run that was killed cannot find them again, so
its tasks are judged by their exit records and outputs and run again where those are missing.
"""

from __future__ import annotations

import contextlib
import enum
import importlib
import itertools
import os
from collections.abc import Iterator, Sequence
from typing import Any

from b2box.batch.backends.base import Backend, BackendBase, JobState, JobStatus, Submitted
from b2box.batch.jobs import PreparedJob
from b2box.batch.retry import BatchCalls
from b2box.errors import B2BoxError
from b2box.settings.declared import SettingGroup
from b2box.settings.resolved import run_group


class CustomSettings(SettingGroup):
    """The settings of ``batch_system = "custom"``."""

    custom_backend: str = ""
    """``"package.module:Class"``: a b2box backend for ``batch_system = "custom"`` (else the task's
    ``process_class``, a b2luigi ``BatchProcess`` plug-in)."""


_wrappers: dict[str, str] = {}  # task id -> its prepared wrapper, for create_executable_wrapper()
_JOB_ID_VARIABLE = "B2BOX_JOB_ID"  # the job id the wrapper records in the exit record and provenance


class ProcessStatus(enum.Enum):
    """b2luigi's job states, as a plug-in's ``get_job_status()`` returns them (``b2box.batch.JobStatus``)."""

    running = "running"
    successful = "successful"
    aborted = "aborted"
    idle = "idle"


class BatchProcess:
    """Base of a b2luigi batch-system plug-in: override ``start_job``, ``get_job_status`` and ``terminate_job``."""

    def __init__(self, task: Any, scheduler: Any = None, result_queue: Any = None, worker_timeout: Any = None) -> None:
        self.task = task
        self.use_multiprocessing = False

    def start_job(self) -> None:
        """Submit ``create_executable_wrapper(self.task)``, its output to ``get_log_file_dir(self.task)``."""
        raise NotImplementedError

    def get_job_status(self) -> ProcessStatus:
        """running, idle (queued), successful or aborted."""
        raise NotImplementedError

    def terminate_job(self) -> None:
        """Remove the job; called at most once, maybe before ``start_job``."""
        raise NotImplementedError


def create_executable_wrapper(task: Any) -> str:
    """The executable a plug-in submits for ``task``: b2box's prepared job wrapper."""
    try:
        return _wrappers[task.task_id]
    except KeyError:
        raise RuntimeError(
            f"{task.task_id}: no job was prepared for this task (b2box prepares it before start_job)"
        ) from None


_STATES = {
    ProcessStatus.running: JobState.RUNNING,
    ProcessStatus.idle: JobState.QUEUED,
    ProcessStatus.successful: JobState.FINISHED,
    ProcessStatus.aborted: JobState.FINISHED,
}


def _state_of(value: Any) -> JobState:
    """A plug-in's status, also when it returns b2luigi's own enum or a plain string."""
    name = getattr(value, "value", value)
    try:
        return _STATES[ProcessStatus(name)]
    except ValueError:
        return JobState.UNKNOWN


def custom_backend(calls: BatchCalls | None = None) -> Backend:
    """``batch_system = "custom"``: the b2box-native backend the ``custom_backend`` setting names, else each task's
    ``process_class`` plug-in."""
    dotted = run_group(CustomSettings).custom_backend
    return _load_backend(dotted) if dotted else ProcessBackend()


def _load_backend(dotted: str) -> Backend:
    """A b2box-native backend named by the ``custom_backend`` setting: ``package.module:Class``, made without
    arguments, with the methods of :class:`~b2box.batch.backends.base.Backend`."""
    module_name, _, class_name = dotted.partition(":")
    try:
        backend: Backend = getattr(importlib.import_module(module_name), class_name)()
    except (ImportError, AttributeError, ValueError, TypeError) as problem:
        raise B2BoxError(
            f"setting 'custom_backend' = {dotted!r} cannot be loaded ({problem!r}): name an importable class as "
            "'package.module:Class' whose instances submit, poll, wait, cancel and close jobs"
        ) from None
    missing = [method for method in ("submit", "poll", "wait", "cancel", "close") if not hasattr(backend, method)]
    if missing:
        raise B2BoxError(f"setting 'custom_backend' = {dotted!r}: the class lacks {', '.join(missing)}")
    return backend


class ProcessBackend(BackendBase):
    """Each task's ``process_class``, one object per job, behind b2box's backend protocol."""

    name = "custom"

    def __init__(self) -> None:
        self._processes: dict[str, Any] = {}
        self._numbers = itertools.count(1)

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        for job in jobs:
            process_class = getattr(job.task, "process_class", None)
            if not isinstance(process_class, type):
                yield Submitted(refused={job.task_id: _no_process_class(job.task)})
                continue
            _wrappers[job.task_id] = job.wrapper
            os.makedirs(job.log_dir, exist_ok=True)
            job_id = f"custom-{os.getpid()}-{next(self._numbers)}"
            try:
                with _job_id_for_children(job_id):  # the wrapper records it, where the plug-in passes variables on
                    process = process_class(task=job.task, scheduler=None, result_queue=None, worker_timeout=None)
                    process.start_job()
            except Exception as problem:  # the plug-in's own error: the task's failure, not the run's
                yield Submitted(refused={job.task_id: f"{process_class.__name__}.start_job() failed: {problem!r}"})
                continue
            self._processes[job_id] = process
            yield Submitted(job_ids={job.task_id: job_id})

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        statuses = {}
        for job_id in job_ids:
            process = self._processes.get(job_id)
            if process is None:  # a job of an earlier run: a plug-in cannot find it again
                statuses[job_id] = JobStatus(JobState.FINISHED)
                continue
            try:
                reported = process.get_job_status()
            except Exception as problem:
                statuses[job_id] = JobStatus(JobState.UNKNOWN, f"get_job_status() failed: {problem!r}")
                continue
            state = _state_of(reported)
            reason = "" if state is not JobState.UNKNOWN else f"get_job_status() returned {reported!r}"
            statuses[job_id] = JobStatus(state, reason)
        return statuses

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            process = self._processes.pop(job_id, None)
            if process is not None:
                process.terminate_job()

    def close(self, leave_running: bool = False) -> None:
        if not leave_running:
            self.cancel([job_id for job_id, process in self._processes.items() if _still_running(process)])


@contextlib.contextmanager
def _job_id_for_children(job_id: str) -> Iterator[None]:
    previous = os.environ.get(_JOB_ID_VARIABLE)
    os.environ[_JOB_ID_VARIABLE] = job_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_JOB_ID_VARIABLE, None)
        else:
            os.environ[_JOB_ID_VARIABLE] = previous


def _still_running(process: Any) -> bool:
    try:
        return _state_of(process.get_job_status()) in (JobState.RUNNING, JobState.QUEUED)
    except Exception:
        return False


def _no_process_class(task: Any) -> str:
    return (
        f"{type(task).__name__} runs with batch_system = 'custom' but has no process_class: give the task a "
        "process_class attribute, a subclass of b2box.batch.BatchProcess (b2luigi's plug-in interface)"
    )
