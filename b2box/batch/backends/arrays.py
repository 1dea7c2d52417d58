"""What every batch system with job arrays shares: waves, grouping, a submit that never goes out twice, one poll.

HTCondor, Slurm and LSF all take a wave of jobs as one submission (a cluster or an array) and answer for all of a
run's jobs in one status query. :class:`ArrayBackend` does that part once; a batch system's module keeps only what
is its own, as hooks:

- :meth:`~ArrayBackend.refusal` and ``group_key``: which jobs cannot go, which share a submission;
- :meth:`~ArrayBackend.array_limit`: the largest array one submission may hold, as a setting says (larger groups
  are split);
- :meth:`~ArrayBackend.find_limits`: what the batch system itself accepts (the largest array, the most jobs in the
  queue), asked once per run; :meth:`~ArrayBackend.limit_refused`: whether a refusal names such a limit, so the
  run submits less and goes on instead of failing every task (a queue limit learned so holds for
  :data:`LEARNED_QUEUE_S`, as the queue has room again when other jobs leave);
- :meth:`~ArrayBackend.submit_array`: render the wave's submission and make the one call, returning its id;
- :meth:`~ArrayBackend.find_arrays`: find waves' submissions again by the tags they carry, after an answer was lost
  (within a run, or by the next run when the submitter was killed: :meth:`~ArrayBackend.recover`);
- :meth:`~ArrayBackend.job_id`: the id of element ``i`` of an array;
- :meth:`~ArrayBackend.query`: the status of the jobs the batch system still knows (the others have finished);
- :meth:`~ArrayBackend.remove`: remove jobs.

Every call goes through the run's retry policy (:mod:`b2box.batch.retry`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from b2box.batch.backends.base import BackendBase, JobState, JobStatus, Submitted
from b2box.batch.jobs import PreparedJob
from b2box.batch.ledger import Intent
from b2box.batch.retry import BatchCalls, CallFailed
from b2box.batch.waves import Wave, WaveTracker
from b2box.errors import B2BoxError

LEARNED_QUEUE_S = 120.0  # how long a queue limit learned from a refusal holds (the queue may have room again)
LimitKind = Literal["array", "queue", ""]  # what a refusal names: the array's size, the jobs in the queue, nothing


@dataclass(frozen=True)
class Limits:
    """What a batch system accepts from one run, as found out (or set); None: no limit known."""

    array_size: int | None = None  # the most jobs one submission may hold
    queued: int | None = None  # the most of this run's jobs in the queue at once
    source: str = ""  # where the figures come from, for people: "MaxArraySize = 1001 (scontrol show config)"


class ArrayBackend(BackendBase):
    """A batch system that takes a wave as one array and answers for all jobs in one query (see the module)."""

    required_command = ""  # the batch system's submit command, checked when a run first needs the backend
    first_index = 0  # the number of an array's first element (LSF counts from 1)
    refused_by = "the batch system refused the job"  # how a refusal is introduced to the user

    def __init__(self, calls: BatchCalls | None = None) -> None:
        self.check_available()
        self.waves = WaveTracker()
        self.retry = calls or BatchCalls(self.name)
        self._limits: Limits | None = None
        self._learned = Limits()  # smaller limits a refusal taught this run
        self._queue_learned_at = 0.0

    def check_available(self) -> None:
        """Raise a :class:`~b2box.errors.B2BoxError` saying what is missing when the batch system is not here."""
        if self.required_command and not shutil.which(self.required_command):
            raise B2BoxError(f"batch_system {self.name!r}: {self.required_command} was not found on this machine.")

    # -- a batch system's own parts ---------------------------------------------------------------------------

    def refusal(self, job: PreparedJob) -> str:
        """Why the job's settings cannot go into a submission (a line break in a value, say), or empty."""
        return ""

    def array_limit(self, job: PreparedJob) -> int | None:
        """The most jobs one submission may hold (None: no limit)."""
        return None

    def find_limits(self) -> Limits:
        """What the batch system accepts (asked once per run; may raise :class:`CallFailed`)."""
        return Limits()

    def limit_refused(self, message: str) -> LimitKind:
        """Whether a submission was refused for a limit (``"array"``: too many jobs in one submission; ``"queue"``:
        too many jobs in the queue), or for a reason of its own (``""``)."""
        return ""

    def submit_array(self, wave: Wave) -> str:
        """Submit ``wave`` in one call (one try; raise :class:`CallFailed`); the id of its array or cluster."""
        raise NotImplementedError

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        """The ids of the submissions made for ``waves``, found by their tags in the queue in one query (tag ->
        id); a wave not found is missing."""
        raise NotImplementedError

    def job_id(self, array_id: str, index: int) -> str:
        """The id of element ``index`` of array ``array_id``."""
        raise NotImplementedError

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The status of each of ``job_ids`` the batch system still knows, in one call (with retries)."""
        raise NotImplementedError

    def remove(self, job_ids: Sequence[str]) -> None:
        """Remove these jobs (with retries); jobs that already left count as removed."""
        raise NotImplementedError

    # -- the shared machinery ---------------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        """The batch system's limits for this run: found out on first use, lowered by what refusals taught."""
        if self._limits is None:
            try:
                self._limits = self.find_limits()
            except CallFailed as error:  # not known: the refusals will say
                self.retry.note(f"b2box: {self.name}: could not read the batch system's limits ({error})")
                self._limits = Limits()
        if self._learned.queued is not None and time.monotonic() - self._queue_learned_at > LEARNED_QUEUE_S:
            self._learned = Limits(
                self._learned.array_size, None, self._learned.source if self._learned.array_size else ""
            )
        found, learned = self._limits, self._learned
        return Limits(
            array_size=_smallest(found.array_size, learned.array_size),
            queued=_smallest(found.queued, learned.queued),
            source=learned.source or found.source,
        )

    def array_unit(self, job: PreparedJob) -> int:
        """The most jobs like ``job`` one submission holds (1: no limit known, any size goes)."""
        return _smallest(self.array_limit(job), self.limits.array_size) or 1

    def adopt(self, job_ids: Sequence[str]) -> None:
        """Jobs an earlier run left queued or running, which this run follows: they take room in the queue."""
        self.waves.adopt(job_ids)

    def room(self) -> int | None:
        """How many more of this run's jobs the batch system takes now (None: as many as come)."""
        queued = self.limits.queued
        return None if queued is None else max(0, queued - self.waves.open_jobs)

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        refused = {job.task_id: problem for job in jobs if (problem := self.refusal(job))}
        if refused:
            yield Submitted(refused=refused)
        groups: dict[Hashable, list[PreparedJob]] = {}
        for job in jobs:
            if job.task_id not in refused:
                groups.setdefault((self.group_key(job), job.request_memory), []).append(job)  # one request each
        deferred: list[str] = []
        for group in groups.values():
            pending = list(group)
            while pending:
                room = self.room()
                if room == 0:
                    deferred += [job.task_id for job in pending]
                    break
                size = _smallest(len(pending), self.array_limit(pending[0]), self.limits.array_size, room) or 1
                piece, pending = pending[:size], pending[size:]
                outcome = self._submit_wave(piece)
                if isinstance(outcome, Submitted):
                    yield outcome
                else:
                    pending = piece + pending  # submitted again, smaller or later (the limit was learned)
        if deferred:
            yield Submitted(deferred=tuple(deferred))

    def _submit_wave(self, jobs: list[PreparedJob]) -> Submitted | LimitKind:
        """One wave in one submission: the job ids, the refusal, or the kind of limit that refused it (learned)."""
        wave = Wave.create(self.name, jobs, first=self.first_index)
        try:
            array_id = self.retry.call("submit", self._submit_once(wave))
        except CallFailed as error:
            kind = self.limit_refused(str(error))
            if kind and self._learn(kind, len(jobs), str(error)):
                wave.remove()
                return kind
            return Submitted(refused={job.task_id: f"{self.refused_by}: {error}" for job in jobs})
        ids = {job.task_id: self.job_id(array_id, index) for index, job in enumerate(jobs, start=self.first_index)}
        self.waves.add(wave, ids.values())
        return Submitted(job_ids=ids)

    def _learn(self, kind: LimitKind, size: int, message: str) -> bool:
        """Lower the limit a refusal named; False when nothing smaller can go (one job refused for its array, none
        of this run's jobs in the queue): then the refusal is the job's own."""
        said = message.strip().splitlines()[-1] if message.strip() else kind
        if kind == "array" and size > 1:
            smaller = max(1, size // 2)
            self._learned = Limits(smaller, self._learned.queued, f"refused an array of {size}: {said}")
            self.retry.note(
                f"b2box: {self.name} refused an array of {size} jobs ({said}); submitting {smaller} at once"
            )
            return True
        if kind == "queue" and self.waves.open_jobs > 0:
            held = self.waves.open_jobs
            self._queue_learned_at = time.monotonic()  # (forgotten after LEARNED_QUEUE_S: other jobs leave too)
            self._learned = Limits(
                self._learned.array_size, held, f"refused more than {held} jobs in the queue: {said}"
            )
            return True
        return False

    def why_full(self) -> str:
        """Why the batch system takes no more of this run's jobs now, for people."""
        limits = self.limits
        return f"{self.name} holds {limits.queued} of this run's jobs, as many as it takes ({limits.source})"

    def _submit_once(self, wave: Wave) -> Callable[[], str]:
        """One try of a submission; a try after a failed one first looks whether that one reached the batch system
        after all (an answer lost to a timeout), so a wave is never submitted twice."""
        tried = False

        def once() -> str:
            nonlocal tried
            if tried:
                found = self.find_arrays([wave]).get(wave.tag, "")
                if found:
                    return found
            tried = True
            return self.submit_array(wave)

        return once

    def recover(self, intents: Sequence[Intent]) -> dict[str, str]:
        """Submissions whose answer a run never recorded, found by their waves' tags: one query for all waves. A
        wave that is not in the queue never reached it (or its jobs ended, and left their exit records), and its
        folder goes."""
        wanted = {intent.job for intent in intents}
        waves = [(wave, numbered) for wave, numbered in Wave.written(self.name) if wanted & set(numbered.values())]
        if not waves:
            return {}
        arrays = self.retry.call("lookup of earlier submissions", lambda: self.find_arrays([w for w, _ in waves]))
        found: dict[str, str] = {}
        for wave, numbered in waves:
            array_id = arrays.get(wave.tag)
            if not array_id:
                wave.remove()
                continue
            ids = {job: self.job_id(array_id, index) for index, job in numbered.items()}
            self.waves.add(wave, ids.values())
            found.update({job: job_id for job, job_id in ids.items() if job in wanted})
        return found

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        known = self.query(job_ids)
        result = {job_id: known.get(job_id, JobStatus(JobState.FINISHED)) for job_id in job_ids}
        self.waves.finished(job_id for job_id, status in result.items() if status.state is JobState.FINISHED)
        return result

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.remove(job_ids)


def _smallest(*values: int | None) -> int | None:
    """The smallest of the values that are set (None: none is)."""
    known = [value for value in values if value is not None]
    return min(known) if known else None
