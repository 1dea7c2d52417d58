"""The local backend: each job is its wrapper, run as a process on this machine.

The poll loop is woken the moment a job ends (through pidfds), so the
per-job overhead is the cost of the job's own process, not of polling.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence

from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.prepare import PreparedJob
from b2box.job.server import ENV_VAR, JobServer


def _job_environment() -> dict[str, str]:
    """This process's environment, minus a job id inherited from an enclosing batch job."""
    return {name: value for name, value in os.environ.items() if name not in ("B2BOX_JOB_ID", ENV_VAR)}


class LocalBackend:
    """Runs wrappers as child processes, each in its own process group."""

    name = "local"

    def __init__(self, job_server: bool = True) -> None:
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._pidfds: dict[str, int] = {}
        self._use_job_server = job_server
        self._server: JobServer | None = None

    def _environment(self) -> dict[str, str]:
        environment = _job_environment()
        if self._use_job_server and self._server is None:
            self._server = JobServer()
        if self._server is not None:
            environment[ENV_VAR] = self._server.path
        return environment

    def close(self) -> None:
        """Stop the job server (after the last job)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def submit(self, jobs: Sequence[PreparedJob]) -> dict[str, str]:
        submitted = {}
        environment = self._environment()
        for job in jobs:
            with open(job.stdout, "wb") as stdout, open(job.stderr, "wb") as stderr:
                process = subprocess.Popen(
                    ["/bin/bash", job.wrapper],
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=environment,
                )
            job_id = f"local-{process.pid}"
            self._processes[job_id] = process
            with contextlib.suppress(AttributeError, OSError):
                self._pidfds[job_id] = os.pidfd_open(process.pid)
            submitted[job.task_id] = job_id
        return submitted

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        states = {}
        for job_id in job_ids:
            process = self._processes.get(job_id)
            if process is None:
                states[job_id] = JobStatus(JobState.FINISHED, reason="not started by this run")
                continue
            code = process.poll()
            if code is None:
                states[job_id] = JobStatus(JobState.RUNNING)
            else:
                states[job_id] = JobStatus(JobState.FINISHED, exit_code=code)
                self._forget(job_id)
        return states

    def wait(self, timeout: float) -> None:
        if self._pidfds and len(self._pidfds) == len(self._processes):
            select.select(list(self._pidfds.values()), [], [], timeout)
        elif self._processes:
            time.sleep(min(timeout, 0.05))

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            process = self._processes.get(job_id)
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for job_id in job_ids:
            process = self._processes.get(job_id)
            if process is not None:
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        self._processes.pop(job_id, None)
        descriptor = self._pidfds.pop(job_id, None)
        if descriptor is not None:
            os.close(descriptor)
