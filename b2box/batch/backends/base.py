"""What every batch backend provides, and the states a job can be in.

A backend is three calls: ``submit`` a wave of jobs at once, ``poll`` the
states of all of the workflow's jobs in one query, ``cancel`` jobs. The poll
loop in :mod:`b2box.batch.runner` is the same for every backend.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from b2box.batch.prepare import PreparedJob


class JobState(enum.Enum):
    """A job's state as b2box needs it; every batch system's states map onto these."""

    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"
    FINISHED = "finished"  # left the batch system; the job's own exit record says how it ended
    UNKNOWN = "unknown"  # the batch system reports something b2box does not know: keep waiting

    @property
    def active(self) -> bool:
        return self in (JobState.QUEUED, JobState.RUNNING, JobState.UNKNOWN)


@dataclass(frozen=True)
class JobStatus:
    """A job's state with what the batch system said about it."""

    state: JobState
    reason: str = ""  # e.g. HTCondor's HoldReason, a Slurm state we did not expect
    exit_code: int | None = None


@dataclass(frozen=True)
class Submitted:
    """What one submission call (one wave group) gave: job ids the moment they are known, or why it was refused."""

    job_ids: dict[str, str] = field(default_factory=dict)  # task id -> job id
    refused: dict[str, str] = field(default_factory=dict)  # task id -> the batch system's reason


class Backend(Protocol):
    """A batch system as the poll loop sees it."""

    name: str

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        """Submit all ``jobs`` (as few calls as possible), yielding each call's result as soon as it returns, so the
        caller records job ids before the next call can fail. A batch system that does not answer raises
        :class:`~b2box.batch.retry.BatchSystemUnavailable` (after the retry policy gave up)."""
        ...

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The state of every job in ``job_ids``, in one query; ``reason`` says what a user must hear (a hold, a state
        b2box does not know), empty for the everyday states."""
        ...

    def wait(self, timeout: float) -> None:
        """Block up to ``timeout`` seconds or until a job may have changed."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> None:
        """Remove or kill these jobs."""
        ...

    def close(self, leave_running: bool = False) -> None:
        """The run is over: release what the backend holds (connections, helper processes); with
        ``leave_running``, jobs still running were left on purpose and must go on."""
        ...
