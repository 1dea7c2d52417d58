"""The local backend: each job is its wrapper, run as a process on this machine.

The poll loop is woken the moment a job ends (through pidfds), so the
per-job overhead is the cost of the job's own process, not of polling.

Local jobs behave like jobs of a batch system: each runs in its own session,
so it outlives a submitter that is killed, and its id names the process and
its start time (``local-<pid>-<start>``), so a later run finds it again,
re-attaches and waits for it instead of starting the task a second time
(a reused pid is not mistaken for the job). Jobs without a container are
forked from a warm job server (:mod:`b2box.job.server`) that outlives its
submitter only as long as jobs it runs are still running.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence

from b2box.batch.backends.base import BackendBase, Capabilities, JobState, JobStatus, Submitted
from b2box.batch.interrupts import held_back
from b2box.batch.jobs import PID_FILE, PreparedJob, start_wrapper
from b2box.batch.ledger import Intent
from b2box.batch.retry import BatchCalls
from b2box.engine.run_lock import process_start
from b2box.env.wrapper import PID_FILE_VARIABLE
from b2box.job.server import ENV_VAR, JobServer

_PREFIX = "local-"


def _job_environment() -> dict[str, str]:
    """This process's environment, minus a job id inherited from an enclosing batch job."""
    return {name: value for name, value in os.environ.items() if name not in ("B2BOX_JOB_ID", ENV_VAR)}


def job_id_of(pid: int) -> str:
    """``local-<pid>-<start time>``: names one process, never a later one that reuses its pid."""
    return f"{_PREFIX}{pid}-{process_start(pid)}"


def parse_job_id(job_id: str) -> tuple[int, str] | None:
    """(pid, start time) of a local job id; None when it is not one (start time empty for older ids)."""
    if not job_id.startswith(_PREFIX):
        return None
    pid, _, start = job_id[len(_PREFIX) :].partition("-")
    return (int(pid), start) if pid.isdigit() else None


def alive(job_id: str) -> bool:
    """Whether the job's process still runs (the same process: its start time matches)."""
    parsed = parse_job_id(job_id)
    if parsed is None:
        return False
    pid, start = parsed
    found = process_start(pid)
    return bool(found) and (not start or found == start)  # a zombie has no start time: it has ended


class LocalBackend(BackendBase):
    """Runs wrappers as processes, each in its own session; re-attaches to those of an earlier run."""

    name = "local"
    capabilities = Capabilities(wakes_on_job_end=True)

    def __init__(self, calls: BatchCalls | None = None, job_server: bool = True) -> None:
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._started: dict[str, str] = {}  # prepared job -> the id of the process started for it
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

    def close(self, leave_running: bool = False) -> None:
        """Stop the jobs still running (the run did not track them all yet when it was stopped) and the job server;
        with ``leave_running`` both go on, the server serving its running jobs to their end."""
        if not leave_running:
            self.cancel([job_id for job_id, process in self._processes.items() if process.poll() is None])
        if self._server is not None:
            if not leave_running:
                self._server.stop()
            self._server = None
        for descriptor in self._pidfds.values():
            os.close(descriptor)
        self._pidfds.clear()

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        environment = self._environment()
        for job in jobs:
            with held_back():  # a run stopped now still knows the job, and cancels it (close)
                process = start_wrapper(job, {**environment, PID_FILE_VARIABLE: os.path.join(job.log_dir, PID_FILE)})
                job_id = job_id_of(process.pid)
                self._processes[job_id] = process
                self._started[job.task_id] = job_id
                self._watch(job_id, process.pid)
            yield Submitted(job_ids={job.task_id: job_id})

    def recover(self, intents: Sequence[Intent]) -> dict[str, str]:
        """Jobs started by a run that was killed before it recorded them: each wrote its id into its log folder
        the moment it started (a file older than the intent is an earlier job's, and does not count)."""
        found = {}
        for intent in intents:
            if intent.job in self._started:  # started by this run (stopped before it recorded the id)
                found[intent.job] = self._started[intent.job]
                continue
            path = os.path.join(intent.log_dir, PID_FILE)
            try:
                if os.stat(path).st_mtime < intent.written - 1:
                    continue
                with open(path, encoding="ascii", errors="replace") as handle:
                    job_id = handle.read().strip()
            except OSError:
                continue
            if parse_job_id(job_id) is not None:
                found[intent.job] = job_id
        return found

    def _watch(self, job_id: str, pid: int) -> None:
        with contextlib.suppress(AttributeError, OSError):
            self._pidfds[job_id] = os.pidfd_open(pid)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        states = {}
        for job_id in job_ids:
            process = self._processes.get(job_id)
            if process is None:  # a job of an earlier run: follow its process
                if alive(job_id):
                    parsed = parse_job_id(job_id)
                    if parsed and job_id not in self._pidfds:
                        self._watch(job_id, parsed[0])
                    states[job_id] = JobStatus(JobState.RUNNING)
                else:
                    states[job_id] = JobStatus(JobState.FINISHED)
                    self._forget(job_id)
                continue
            code = process.poll()
            if code is None:
                states[job_id] = JobStatus(JobState.RUNNING)
            else:
                states[job_id] = JobStatus(JobState.FINISHED, exit_code=code)
                self._forget(job_id)
        return states

    def wait(self, timeout: float) -> None:
        if self._pidfds:
            select.select(list(self._pidfds.values()), [], [], timeout)
        else:
            time.sleep(min(timeout, 0.05))

    def cancel(self, job_ids: Sequence[str]) -> None:
        groups = {}
        for job_id in job_ids:
            parsed = parse_job_id(job_id)
            if parsed is not None and alive(job_id):
                groups[job_id] = parsed[0]
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(parsed[0], signal.SIGTERM)
        deadline = time.monotonic() + 10
        for job_id, pid in groups.items():
            process = self._processes.get(job_id)
            while (process.poll() is None if process else alive(job_id)) and time.monotonic() < deadline:
                time.sleep(0.05)
            if process.poll() is None if process else alive(job_id):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                if process is not None:
                    process.wait()
        for job_id in job_ids:
            self._forget(job_id)

    def _forget(self, job_id: str) -> None:
        self._processes.pop(job_id, None)
        descriptor = self._pidfds.pop(job_id, None)
        if descriptor is not None:
            os.close(descriptor)
