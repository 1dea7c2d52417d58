"""What every batch backend provides, what it may declare about itself, and the states a job can be in.

A backend is three calls: ``submit`` a wave of jobs at once, ``poll`` the states of all of the workflow's jobs in
one query, ``cancel`` jobs. What differs between batch systems beyond that is declared, not tested by name: a
backend's :class:`Capabilities` say what the rest of b2box must do differently for it, and
:class:`BackendBase` gives every optional part its default. The poll loop in :mod:`b2box.batch.runner` is the same
for every backend.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from b2box.batch.jobs import PreparedJob
    from b2box.batch.ledger import Intent
    from b2box.env.spec import EnvSpec


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
    memory_kill: bool = False  # the batch system says it stopped the job for its memory
    memory_used: int | None = None  # bytes, as the batch system measured it (where its answer says)


@dataclass(frozen=True)
class Submitted:
    """What one submission call (one wave group) gave: job ids the moment they are known, or why it was refused."""

    job_ids: dict[str, str] = field(default_factory=dict)  # task id -> job id
    refused: dict[str, str] = field(default_factory=dict)  # task id -> the batch system's reason
    deferred: tuple[str, ...] = ()  # task ids not submitted now: the batch system holds as many jobs as it takes


@dataclass(frozen=True)
class Capabilities:
    """What a backend's jobs need from the rest of b2box beyond submit, poll and cancel; all off by default."""

    # The site chooses the container and the release (the grid): jobs get no wrapper and no image check.
    site_chooses_container: bool = False
    # Jobs can bring their files along where worker nodes share no filesystem (the transfer_files setting).
    transfers_files: bool = False
    # The backend judges a job by its task (it downloads, reschedules ...): it is handed each job it follows.
    follows_jobs: bool = False
    # wait() returns the moment a job ends, so the run waits on this backend when it has jobs.
    wakes_on_job_end: bool = False
    # An array runs at most max_jobs_in_flight of its jobs at once (Slurm's --array=...%K): all go out at once.
    throttles_arrays: bool = False


class Backend(Protocol):
    """A batch system as the poll loop sees it."""

    name: str
    capabilities: Capabilities

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

    def follow(self, job_id: str, job: PreparedJob) -> None:
        """Take over the judging of ``job`` (only called when ``capabilities.follows_jobs``)."""
        ...

    def recover(self, intents: Sequence[Intent]) -> dict[str, str]:
        """The job ids of submissions made for ``intents`` (by an earlier run killed before it recorded them, or
        by this run before it was interrupted), as far as the batch system still knows them: intent.job -> id."""
        ...


class BackendBase:
    """The defaults of a backend's optional parts; a backend class derives from it (or declares them itself)."""

    name = "unnamed"
    capabilities = Capabilities()

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def close(self, leave_running: bool = False) -> None:
        """Nothing to release: jobs still queued stay, and a later run re-attaches to them."""

    def follow(self, job_id: str, job: PreparedJob) -> None:
        """Take over the judging of ``job`` (only called when ``capabilities.follows_jobs``)."""

    def recover(self, intents: Sequence[Intent]) -> dict[str, str]:
        """Nothing can be found again: such a submission's tasks are submitted anew."""
        return {}

    def explain(self, job_ids: Sequence[str]) -> dict[str, str]:
        """What the batch system says of jobs that ended without their exit record (removed, cancelled, killed by
        it), asked once for all: job id -> a sentence. Nothing to say by default."""
        return {}

    def group_key(self, job: PreparedJob) -> Hashable:
        """Jobs with equal keys may share one submission (and tasks with equal keys one job): equal settings."""
        return settings_of(job.task).batch.job_name

    @classmethod
    def version_here(cls) -> str:
        """The batch system's version on this machine, for ``b2box info`` (empty: nothing to say)."""
        return ""

    @classmethod
    def managed_container(cls, task: Any, spec: EnvSpec) -> str:
        """How the batch system starts the task's container itself (a mode its submission understands), or empty
        when the job's wrapper starts it; a setting that asks for what cannot work raises a
        :class:`~b2box.errors.TaskDefinitionError` naming the task."""
        return ""


def capabilities_of(backend: Any) -> Capabilities:
    """A backend's (or backend class's) capabilities; a plug-in that declares none has the defaults."""
    found = getattr(backend, "capabilities", None)
    return found if isinstance(found, Capabilities) else Capabilities()


def explained(backend: Any, job_ids: Sequence[str]) -> dict[str, str]:
    """``backend.explain(job_ids)`` where the backend has it, else nothing; a question that fails says nothing
    (the job's failure is reported anyway)."""
    method = getattr(backend, "explain", None)
    if not callable(method) or not job_ids:
        return {}
    try:
        return dict(method(job_ids))
    except Exception:
        return {}


def recovered(backend: Any, intents: Sequence[Intent]) -> dict[str, str]:
    """``backend.recover(intents)`` where the backend has it (a plug-in may not), else nothing."""
    method = getattr(backend, "recover", None)
    return dict(method(intents)) if callable(method) and intents else {}


def submission_key(backend: Any, job: PreparedJob) -> Hashable:
    """``backend.group_key(job)`` where the backend has it, else the job's name."""
    method = getattr(backend, "group_key", None)
    return method(job) if callable(method) else settings_of(job.task).batch.job_name


def managed_container(backend: Any, task: Any, spec: EnvSpec) -> str:
    """``backend.managed_container(task, spec)`` where the backend has it, else empty (the wrapper starts it)."""
    method = getattr(backend, "managed_container", None)
    return str(method(task, spec)) if callable(method) else ""


def room_of(backend: Any) -> int | None:
    """How many more jobs ``backend`` takes now (``backend.room()`` where it has it; None: no limit)."""
    method = getattr(backend, "room", None)
    return method() if callable(method) else None


def adopt_jobs(backend: Any, job_ids: Sequence[str]) -> None:
    """Tell ``backend`` (``backend.adopt(job_ids)`` where it has it) that the run follows these jobs of an earlier
    run, so that they count against its room."""
    method = getattr(backend, "adopt", None)
    if callable(method) and job_ids:
        method(job_ids)


def array_unit(backend: Any, job: PreparedJob) -> int:
    """How many jobs like ``job`` ``backend`` takes in one submission (``backend.array_unit(job)`` where it has it;
    else 1): a pass that stops for time stops at a multiple of it, so no submission is cut short."""
    method = getattr(backend, "array_unit", None)
    return max(1, int(method(job))) if callable(method) else 1


def why_full(backend: Any) -> str:
    """Why ``backend`` takes no more jobs now (``backend.why_full()`` where it has it), or empty."""
    method = getattr(backend, "why_full", None)
    return str(method()) if callable(method) else ""
