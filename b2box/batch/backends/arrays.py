"""What every batch system with job arrays shares: waves, grouping, a submit that never goes out twice, one poll.

HTCondor, Slurm and LSF all take a wave of jobs as one submission (a cluster or an array) and answer for all of a
run's jobs in one status query. :class:`ArrayBackend` does that part once; a batch system's module keeps only what
is its own, as hooks:

- :meth:`~ArrayBackend.refusal` and ``group_key``: which jobs cannot go, which share a submission;
- :meth:`~ArrayBackend.array_limit`: the largest array one submission may hold (larger groups are split);
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
from collections.abc import Callable, Hashable, Iterator, Sequence

from b2box.batch.backends.base import BackendBase, JobState, JobStatus, Submitted
from b2box.batch.jobs import PreparedJob
from b2box.batch.ledger import Intent
from b2box.batch.retry import BatchCalls, CallFailed
from b2box.batch.waves import Wave, WaveTracker
from b2box.errors import B2BoxError


class ArrayBackend(BackendBase):
    """A batch system that takes a wave as one array and answers for all jobs in one query (see the module)."""

    required_command = ""  # the batch system's submit command, checked when a run first needs the backend
    first_index = 0  # the number of an array's first element (LSF counts from 1)
    refused_by = "the batch system refused the job"  # how a refusal is introduced to the user

    def __init__(self, calls: BatchCalls | None = None) -> None:
        self.check_available()
        self.waves = WaveTracker()
        self.retry = calls or BatchCalls(self.name)

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

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        refused = {job.task_id: problem for job in jobs if (problem := self.refusal(job))}
        if refused:
            yield Submitted(refused=refused)
        groups: dict[Hashable, list[PreparedJob]] = {}
        for job in jobs:
            if job.task_id not in refused:
                groups.setdefault(self.group_key(job), []).append(job)
        for group in groups.values():
            size = self.array_limit(group[0]) or len(group)
            for start in range(0, len(group), max(1, size)):
                yield self._submit_wave(group[start : start + size])

    def _submit_wave(self, jobs: list[PreparedJob]) -> Submitted:
        wave = Wave.create(self.name, jobs, first=self.first_index)
        try:
            array_id = self.retry.call("submit", self._submit_once(wave))
        except CallFailed as error:
            return Submitted(refused={job.task_id: f"{self.refused_by}: {error}" for job in jobs})
        ids = {job.task_id: self.job_id(array_id, index) for index, job in enumerate(jobs, start=self.first_index)}
        self.waves.add(wave, ids.values())
        return Submitted(job_ids=ids)

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
