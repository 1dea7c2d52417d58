"""Which attempt a task's job is, and whether a job that failed goes out again.

A failed or held job comes back while the task's ``retries`` last; a job killed for memory comes back with a larger
request while ``memory_growth`` lets it (:mod:`b2box.batch.memory`), without using up a retry. Each attempt's
number and request go into its ``job.json`` and provenance; the record of an attempt that failed is kept beside the
next one's as ``provenance.attempt-N.json``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from b2box.batch.memory import grown_request
from b2box.jsonio import read_json, write_json
from b2box.settings.resolved import settings_of
from b2box.settings.sizes import human_size

if TYPE_CHECKING:
    from b2box.batch.jobs import PreparedJob
    from b2box.batch.notices import Notices
    from b2box.batch.verdict import Problem


@dataclass(frozen=True)
class Attempt:
    """Which submission of a task a job is, and the memory it asks for (bytes; None: no request)."""

    number: int = 1
    memory: int | None = None


def first_attempt(task: Any) -> Attempt:
    """A task's first job: its ``request_memory`` setting."""
    return Attempt(number=1, memory=settings_of(task).batch.request_memory)


@dataclass
class Attempts:
    """The run's resubmissions: retries used per task, and the next attempt of each task that goes out again."""

    notices: Notices
    retries_used: dict[str, int] = field(default_factory=dict)
    upcoming: dict[str, Attempt] = field(default_factory=dict)

    def next_of(self, task_id: str) -> Attempt | None:
        """The attempt the task's next job is (None: its first)."""
        return self.upcoming.pop(task_id, None)

    def again(self, family: str, job: PreparedJob, problem: Problem, message: str) -> bool:
        """Whether the failed ``job`` goes out again; if so, its next attempt is noted and the notices told."""
        memory = problem.killed_for_memory
        request = grown_request(job.task, job.request_memory, problem.memory_used) if memory else None
        if request is not None:
            self.notices.grown(family, job.task_id, message, human_size(request))
            return self._noted(job, Attempt(job.attempt + 1, request), message, problem.memory_used)
        used = self.retries_used[job.task_id] = self.retries_used.get(job.task_id, 0) + 1
        retries = settings_of(job.task).batch.retries
        if used > retries:
            return False
        self.notices.retry(family, job.task_id, message, used, retries)
        return self._noted(job, Attempt(job.attempt + 1, job.request_memory), message)

    def _noted(self, job: PreparedJob, attempt: Attempt, outcome: str, used: int | None = None) -> bool:
        keep_attempt(job, outcome, used)
        self.upcoming[job.task_id] = attempt
        return True


def keep_attempt(job: PreparedJob, outcome: str, used: int | None = None) -> None:
    """Keep the record of an attempt that failed, as ``provenance.attempt-N.json`` beside the next one's (a job
    killed with its watcher, by the batch system, left none: one is written from what the submitter knows), with
    the memory it was seen to use (``used``: as the batch system or its watcher measured it)."""
    kept = os.path.join(job.log_dir, f"provenance.attempt-{job.attempt}.json")
    found = read_json(job.provenance_file)
    record = found if isinstance(found, dict) else {"task_id": job.task_id, "attempt": job.attempt,
                                                     "request_memory_bytes": job.request_memory}  # fmt: skip
    seen = {"memory_used_bytes": used} if used else {}
    with contextlib.suppress(OSError):
        write_json(kept, {**record, "outcome": outcome, **seen})
