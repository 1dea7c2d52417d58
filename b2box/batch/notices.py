"""What a batch run tells about jobs still in the batch system (a hold, a suspension, a state b2box does not know),
about the retries that follow a hold or a failure, and about a batch system that takes no more jobs for now: each
reason once, and again only when it changes, and one line per reason for all the jobs of a poll it concerns, so
1,500 held jobs are one line, not 1,500.
"""

from __future__ import annotations

from collections.abc import Callable

from b2box.batch.backends.base import JobStatus
from b2box.engine.failures import JOB_ID


class Notices:
    """Collects a poll's notices and tells them grouped (:meth:`tell`)."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self._note = note
        self._told: dict[str, str] = {}  # job id (or "full:" and a batch system) -> the last reason told
        self._reasons: dict[str, list[tuple[str, str, str]]] = {}  # reason without its job id -> (job, tasks, reason)
        self._retries: dict[str, list[str]] = {}  # what happened, and which retry -> the lines of its tasks

    def job(self, job_id: str, tasks: list[str], status: JobStatus) -> None:
        """A job's status this poll: a reason for a job still in the batch system is told when it is new."""
        reason = status.reason
        if reason and status.state.active and self._told.get(job_id) != reason:
            shared = reason.replace(job_id, "<id>")
            self._reasons.setdefault(shared, []).append((job_id, ", ".join(tasks), reason))
        self._told[job_id] = reason

    def full(self, system: str, waiting: int, why: str = "") -> None:
        """``system`` holds as many of the run's jobs as it takes; ``waiting`` tasks wait for room (told at once)."""
        text = why or f"{system} holds as many of this run's jobs as it takes"
        if self._told.get(f"full:{system}") != text:
            self._told[f"full:{system}"] = text
            self._note(f"b2box: {text}; the other tasks are submitted as jobs end ({waiting:,} waiting)")

    def forget(self, job_id: str) -> None:
        """The job has ended: nothing more is told of it."""
        self._told.pop(job_id, None)

    def retry(self, family: str, task_id: str, message: str, attempt: int, retries: int) -> None:
        """A task whose job was held or failed goes out again."""
        first = message.splitlines()[0] if message else ""
        key = f"{family}\0{JOB_ID.sub('', first)} -- retry {attempt} of {retries}"
        self._retries.setdefault(key, []).append(f"b2box: {task_id}: {first} -- retry {attempt} of {retries}")

    def grown(self, family: str, task_id: str, message: str, request: str) -> None:
        """A task whose job was killed for memory goes out again with a larger request."""
        first = message.splitlines()[0] if message else ""
        what = f"{JOB_ID.sub('', first)} -- resubmitted with request_memory {request}"
        key = f"{family}\0{what}"
        self._retries.setdefault(key, []).append(f"b2box: {task_id}: {first} -- resubmitted with {request}")

    def tell(self) -> None:
        """Everything collected since the last call, a line per reason (and one per retry of one cause)."""
        for shared, jobs in self._reasons.items():
            if len(jobs) == 1:
                job_id, tasks, reason = jobs[0]
                self._note(f"b2box: job {job_id} ({tasks}): {reason}")
            else:
                self._note(f"b2box: {len(jobs):,} jobs ({jobs[0][0]} … {jobs[-1][0]}): {shared}")
        for key, lines in self._retries.items():
            family, what = key.split("\0")
            self._note(lines[0] if len(lines) == 1 else f"b2box: {len(lines):,} tasks of {family}: {what}")
        self._reasons.clear()
        self._retries.clear()
