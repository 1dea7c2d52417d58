"""Tasks with an environment, and dispatched tasks, run without ``--batch``: through the same wrapper as a batch
job, here and now.

A task that declares an image, an ``env_script``, ``env`` or binds must run in that environment also in a local
run, or the environment spec means nothing on the most common path. A dispatched task (``@dispatch``,
``DispatchableTask``) runs through the wrapper as in b2luigi, which starts it as its own process with its
environment, ``executable`` and ``working_dir`` and its ``stdout``/``stderr`` in its log folder. Such a task is
prepared exactly as for the local batch backend (``job.json``, the wrapper, its container, binds, logs,
provenance), its wrapper run by the worker process the scheduler gave it, and judged like a batch job: by its exit
record and its outputs. Other tasks keep the fast path (run in a worker's own Python).

Before anything runs, :meth:`WrapperRuns.check` resolves every image the run needs, once: a missing image, a
Docker engine that does not answer or ``env:NAME`` without ``images/`` is one message naming the tasks, the
setting and the fix, not one failure per task. What preparing and judging a job needs (the environment model,
pydantic) is imported only when a task wants it: a workflow without environments never loads it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import TYPE_CHECKING, Any

from b2box.api.dispatch import is_dispatched
from b2box.errors import B2BoxError
from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from b2box.batch.jobs import PreparedJob
    from b2box.batch.prepare import JobPreparer

_GRACE = 3.0  # seconds a stopped wrapper gets before SIGKILL (less than a stopped worker gets: engine/workers.py)


def has_environment(task: Any) -> bool:
    """Whether the task declares where it runs (image, env_script, env or binds)."""
    return settings_of(task).environment.states_environment


class WrapperRuns:
    """The scheduler's way to run tasks with an environment (see the module docstring)."""

    def __init__(self) -> None:
        self._preparer: JobPreparer | None = None

    def wants(self, task: Any) -> bool:
        # --test runs dispatched run() methods right here, as b2luigi's --test does
        return has_environment(task) or (is_dispatched(task) and not settings_of(task).dispatch_in_place)

    def check(self, tasks: list[Any]) -> None:
        wanted = [task for task in tasks if self.wants(task)]
        if not wanted:
            return
        from b2box.batch.problems import raise_grouped, record_problem
        from b2box.env.python_check import check_python
        from b2box.env.spec import spec_for_task

        problems: dict[str, list[str]] = {}
        preparer = self.preparer()
        for task in wanted:
            try:
                spec = spec_for_task(task)
                check_python(spec, preparer.identity(task, spec))
            except B2BoxError as error:
                record_problem(problems, error, task)
        raise_grouped(problems)

    def preparer(self) -> JobPreparer:
        if self._preparer is None:
            from b2box.batch.prepare import JobPreparer

            self._preparer = JobPreparer("local")
        return self._preparer

    def run(self, task: Any, kept: tuple[str, dict[str, Any]] | None = None) -> str | None:
        from b2box.batch import secrets
        from b2box.batch.backends.base import JobState, JobStatus
        from b2box.batch.jobs import start_wrapper
        from b2box.batch.verdict import judge

        try:
            job = self.preparer().prepare(task, kept)
        except B2BoxError as error:
            return str(error)
        environment = {name: value for name, value in os.environ.items() if name not in ("B2BOX_JOB_ID",)}
        environment.pop("B2BOX_JOB_SERVER", None)
        try:
            process = start_wrapper(job, environment)
            try:
                code = process.wait()
            except BaseException:  # the run is stopping (SIGTERM in this worker): the job stops with it
                _stop(process, job)
                raise
            problem = judge(job, JobStatus(JobState.FINISHED, exit_code=code))
            return problem.text if problem is not None else None
        finally:
            secrets.remove_file(job.secret_file)


def _stop(process: subprocess.Popen[bytes], job: PreparedJob) -> None:
    """Stop the job's wrapper and what it started; a Docker container outlives a killed ``docker run``, so it is
    removed by its name."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if job.identity.runtime == "docker":
            from b2box.env.container import docker_name

            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(["docker", "rm", "--force", docker_name(job.task_id)], capture_output=True, timeout=30)
