"""The batch systems of one run, made when first needed and each introduced once: which one runs the jobs and why
(``batch_system = "auto"`` says what it found), and what the jobs run in (runtime, image, digest), once for each.

A user who typed ``--batch`` sees at the start where the work goes, instead of finding out from the logs that
``auto`` found no batch system and ran every job on this machine.
"""

from __future__ import annotations

from collections.abc import Callable

from b2box.batch.backends import registry
from b2box.batch.backends.base import Backend
from b2box.batch.jobs import PreparedJob
from b2box.batch.prepare import JobPreparer
from b2box.batch.retry import BatchCalls, RetryPolicy


class RunSystems:
    """Each backend and job preparer of a run, made once; ``note`` says what was chosen."""

    def __init__(self, backends: dict[str, Backend], retry_policy: RetryPolicy, note: Callable[[str], None]) -> None:
        self.backends = backends  # given ones (tests, plug-ins) are used as they are, and not introduced
        self.preparers: dict[str, JobPreparer] = {}
        self.retry_policy = retry_policy
        self._note = note
        self._introduced: set[tuple[str, str, str]] = set()  # (runtime, image, digest) said

    def backend(self, name: str) -> Backend:
        if name not in self.backends:
            self.backends[name] = registry.create(name, BatchCalls(name, self.retry_policy, note=self._note))
            self._note(f"b2box: {registry.choice(name)}")
        return self.backends[name]

    def preparer(self, name: str) -> JobPreparer:
        if name not in self.preparers:
            self.preparers[name] = JobPreparer(name, self.backend(name))
        return self.preparers[name]

    def prepared(self, job: PreparedJob) -> None:
        """Say what jobs run in, the first time a job runs in it (a run with one image says it once)."""
        identity = job.identity
        key = (identity.runtime, identity.reference, identity.digest)
        if key in self._introduced:
            return
        self._introduced.add(key)
        first = f" (the first: {job.task.task_family})"
        if not identity.reference:
            self._note(f"b2box: jobs run without a container{first}")
            return
        digest = f" {identity.digest}" if identity.digest else ", no content digest"
        self._note(f"b2box: jobs run in {identity.runtime} image {identity.reference}{digest}{first}")
