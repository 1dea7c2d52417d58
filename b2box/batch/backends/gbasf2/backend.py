"""The gbasf2 backend: submits one grid project per task and follows all of the run's projects in one status query.

Each task becomes a project named ``gbasf2_project_name_prefix`` + a hash of the task (b2luigi's names, so a
project b2luigi submitted is re-attached too), submitted with the task's basf2 release (``gbasf2_release``, else the
one it is submitted from) and its path pickled into the input sandbox with a steering file that restores it (or
``gbasf2_custom_steering_file``). A project that already exists is monitored, never submitted again.

Status is asked every ``gbasf2_status_interval`` seconds (5 minutes by default: DIRAC servers rate-limit), for all
projects at once. Failed, Stalled and Killed jobs are rescheduled up to ``gbasf2_max_retries`` times each (counts
kept in the task's log folder); a job that cannot be retried ends its project as failed, with the failed jobs'
logs fetched into the task's log folder; when such a job's DIRAC status says in words that it was stopped for its
memory (no status of DIRAC itself does: :mod:`.projects`), the task is named killed for memory. A project whose
jobs are all done is collected (:mod:`.download`). The outcome is written as the task's exit record, so the run
judges a project like any job.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from b2box.basf2.serialize import write_path_and_state
from b2box.batch.backends.base import BackendBase, Capabilities, JobState, JobStatus, Submitted
from b2box.batch.backends.gbasf2 import download, projects
from b2box.batch.backends.gbasf2.session import GridProxyExpired, GridSession
from b2box.batch.backends.gbasf2.settings import GridSettings, grid_settings
from b2box.batch.jobs import PreparedJob
from b2box.batch.retry import BatchCalls, BatchSystemUnavailable, CallFailed
from b2box.errors import B2BoxError
from b2box.job.files import ExitRecord, read_json, write_json
from b2box.results.identity import grid_environment
from b2box.results.records import first_output_of

RETRIES_FILE = "n_retries_by_grid_job.json"
DOWNLOAD_ATTEMPTS = 3


class Gbasf2Backend(BackendBase):
    """Submits grid projects with ``gbasf2`` and follows them (see the module docstring)."""

    name = "gbasf2"
    # the grid site chooses the container (gbasf2 the release); the backend downloads and judges each project
    capabilities = Capabilities(site_chooses_container=True, follows_jobs=True)

    def __init__(self, calls: BatchCalls | None = None) -> None:
        self.session = GridSession(calls or BatchCalls(self.name))
        self.retry = self.session.retry
        self.jobs: dict[str, PreparedJob] = {}  # project -> the task's job
        self._last_query = 0.0
        self._last: dict[str, JobStatus] = {}
        self._progress: dict[str, str] = {}

    # -- submission ------------------------------------------------------------------------------------

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        named, refused = self._names(jobs)
        if refused:
            yield Submitted(refused=refused)
        existing = self._existing(named)
        for name, job in named.items():
            grid = grid_settings(job.task)
            try:
                environment = self.session.environment(grid)
                if existing.get(name) is not None:  # re-attach: a project is never submitted twice
                    self.retry.note(f"b2box: grid project {name} exists already; following it instead of submitting")
                else:
                    self._submit_project(job, name, grid, environment)
            except (projects.GridSetupError, B2BoxError) as error:
                if isinstance(error, BatchSystemUnavailable):
                    raise
                yield Submitted(refused={job.task_id: f"{job.task_id}: {error}"})
                continue
            except CallFailed as error:
                yield Submitted(refused={job.task_id: f"gbasf2 refused the project: {error}"})
                continue
            self.follow(name, job)
            yield Submitted(job_ids={job.task_id: name})

    def _names(self, jobs: Sequence[PreparedJob]) -> tuple[dict[str, PreparedJob], dict[str, str]]:
        """Each task's project name, checked before anything is submitted; and the tasks whose name is refused."""
        named: dict[str, PreparedJob] = {}
        refused: dict[str, str] = {}
        for job in jobs:
            try:
                named[projects.project_name(_project_key(job), grid_settings(job.task))] = job
            except projects.GridSetupError as error:
                refused[job.task_id] = f"{job.task_id}: {error}"
        return named, refused

    def _existing(self, named: Mapping[str, PreparedJob]) -> dict[str, Any]:
        """Which of these projects exist already: one status query for the whole wave."""
        if not named:
            return {}
        first = next(iter(named.values()))
        try:
            environment = self.session.environment(grid_settings(first.task))
        except B2BoxError:
            return {}  # reported per task when it is submitted
        return dict(self.session.ask(environment, "status", self.session.user, *named)["projects"])

    def _submit_project(self, job: PreparedJob, name: str, grid: GridSettings, environment: Mapping[str, str]) -> None:
        release = grid.release or str(getattr(job.task, "git_hash", "") or "")
        if not release or release == "not_set":
            raise projects.GridSetupError("no basf2 release known: set gbasf2_release (or submit from a basf2 setup)")
        sandbox = os.path.join(job.task_dir, "gbasf2")
        files = _fill_sandbox(job, grid, sandbox)
        command = projects.submit_command(name, release, grid, files)
        done = self.retry.call("submit", lambda: self.retry.run_once(command, env=environment, cwd=sandbox))
        if "JobID" not in done.stdout:
            raise CallFailed(f"gbasf2 did not report job ids: {done.stdout.strip()[-500:]}", transient=False)
        write_json(os.path.join(job.log_dir, download.PROJECT_FILE),
                   {"project": name, "release": release, "gbasf2": self.session.version, "submitted": download.now(),
                    "input": list(grid.input_dataset) or [grid.input_dslist]})  # fmt: skip

    @staticmethod
    def result_environment(task: Any) -> tuple[str, str]:
        """A grid result's environment: the site chooses the container; the basf2 release is what counts."""
        return grid_environment(grid_settings(task).release or str(getattr(task, "git_hash", "") or ""))

    def follow(self, job_id: str, job: PreparedJob) -> None:
        """The runner hands over the task of a project (also of one submitted by an earlier run)."""
        self.jobs[job_id] = job

    # -- status ----------------------------------------------------------------------------------------

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        interval = min((grid_settings(self.jobs[name].task).status_interval for name in job_ids
                        if name in self.jobs), default=0.0)  # fmt: skip
        due = time.monotonic() - self._last_query >= interval or any(name not in self._last for name in job_ids)
        if not due:
            return {name: self._last.get(name, JobStatus(JobState.RUNNING)) for name in job_ids}
        self._last_query = time.monotonic()
        grid = grid_settings(self.jobs[job_ids[0]].task) if job_ids[0] in self.jobs else None
        environment = self.session.environment(grid) if grid else self.session.any_environment()
        answer = self.session.ask(environment, "status", self.session.user, *job_ids)
        if grid is not None and int(answer.get("proxy_seconds", 0)) <= max(60, 3600 * grid.min_proxy_lifetime):
            try:
                self.session.ensure_proxy(environment, grid, seconds=int(answer.get("proxy_seconds", 0)))
            except B2BoxError:
                raise GridProxyExpired(self.session.proxy_command(grid)) from None
        result = {name: self._judge(name, answer["projects"].get(name), environment) for name in job_ids}
        self._last.update(result)
        return result

    def _judge(self, name: str, jobs: Mapping[str, Mapping[str, Any]] | None, environment: Mapping[str, str]
               ) -> JobStatus:  # fmt: skip
        job = self.jobs.get(name)
        if job is None:  # not handed over yet (re-attaching): only say whether it exists
            return JobStatus(JobState.RUNNING if jobs is not None else JobState.FINISHED)
        grid = grid_settings(job.task)
        if jobs is None:
            return self._end(job, 1, f"grid project {name} does not exist (any more)")
        state = projects.project_state(jobs)
        if state.unknown:
            self.retry.note(f"b2box: project {name}: unknown DIRAC states {sorted(set(state.unknown.values()))}")
        if state.final_failures or state.retryable:
            return self._reschedule_or_fail(job, name, jobs, state, environment, grid)
        if state.complete:
            return self._collect(job, name, jobs, environment, grid)
        progress = f"{len(state.done)}/{state.jobs} jobs done"
        if grid.print_status_updates and self._progress.get(name) != progress:
            self.retry.note(f"b2box: project {name}: {progress}")
        self._progress[name] = progress
        return JobStatus(JobState.RUNNING)

    def _reschedule_or_fail(self, job: PreparedJob, name: str, jobs: Mapping[str, Mapping[str, Any]],
                            state: projects.ProjectState, environment: Mapping[str, str],
                            grid: GridSettings) -> JobStatus:  # fmt: skip
        """Failed jobs are rescheduled while they have tries left; one that has none ends the project as failed."""
        counts = read_json(os.path.join(job.log_dir, RETRIES_FILE)) or {}
        again = [job_id for job_id in state.retryable if counts.get(job_id, 0) < grid.max_retries]
        hopeless = {**state.final_failures,
                    **{job_id: projects.describe_failure(jobs[job_id]) for job_id in state.retryable
                       if job_id not in again}}  # fmt: skip
        if hopeless:
            download.fetch_logs(self.session, job, name, environment, only=list(hopeless))
            reasons = "; ".join(f"job {job_id}: {why}" for job_id, why in sorted(hopeless.items()))
            memory = any(projects.killed_for_memory(jobs[job_id]) for job_id in hopeless if job_id in jobs)
            return self._end(job, 1, f"grid project {name} failed: {reasons}", memory=memory)
        for job_id in again:
            counts[job_id] = counts.get(job_id, 0) + 1
        write_json(os.path.join(job.log_dir, RETRIES_FILE), counts)
        self.session.gb2("reschedule", ["gb2_job_reschedule", "--jobid", *again, "--force"], environment)
        self.retry.note(f"b2box: project {name}: rescheduled {len(again)} failed job(s) "
                        f"({', '.join(f'{j} try {counts[j] + 1}' for j in again)})")  # fmt: skip
        return JobStatus(JobState.RUNNING)

    # -- outcomes --------------------------------------------------------------------------------------

    def _collect(self, job: PreparedJob, name: str, jobs: Mapping[str, Mapping[str, Any]],
                 environment: Mapping[str, str], grid: GridSettings) -> JobStatus:  # fmt: skip
        """All jobs done: logs, provenance, then the dataset; the project ends when its outputs are in place."""
        if grid.download_logs:
            download.fetch_logs(self.session, job, name, environment)
        download.write_provenance(self.session, job, name, jobs)
        if grid.download_dataset:
            missing = download.download_outputs(self.session, job, name, environment, grid)
            if missing:
                attempts_file = os.path.join(job.log_dir, "gbasf2_download_attempts.json")
                attempts = int((read_json(attempts_file) or {}).get("attempts", 0)) + 1
                write_json(attempts_file, {"attempts": attempts})
                if attempts >= DOWNLOAD_ATTEMPTS:
                    return self._end(
                        job,
                        1,
                        f"download of grid project {name} incomplete after {attempts} tries "
                        f"({missing}); its partial download is kept, the next run resumes it",
                    )
                self.retry.note(f"b2box: project {name}: download incomplete ({missing}); trying again")
                return JobStatus(JobState.RUNNING)
        return self._end(job, 0, f"grid project {name}: all {len(jobs)} jobs done and downloaded", project=name)

    def _end(self, job: PreparedJob, code: int, message: str, project: str = "", memory: bool = False) -> JobStatus:
        """The project's outcome as the task's exit record, its reason in the task's stderr; ``memory``: a job of it
        was stopped for its memory, as its DIRAC statuses say (the run then names the task killed for memory)."""
        with open(job.stderr, "a", encoding="utf-8") as handle:
            handle.write(f"b2box: {message}\n")
        if code == 0 and job.result_record:  # the dataset is in place: what made it goes beside it
            path, record = job.result_record
            made = {"made": download.now(), "host": f"the grid (project {project})", "outputs": [first_output_of(path)]}
            write_json(path, {**record, **made})
        ExitRecord.now(code).write(job.exit_file)
        return JobStatus(JobState.FINISHED, reason=message if code else "", exit_code=code, memory_kill=memory)

    def cancel(self, job_ids: Sequence[str]) -> None:
        for name in job_ids:
            job = self.jobs.get(name)
            if job is None:
                continue
            environment = self.session.environment(grid_settings(job.task))
            command = ["gb2_job_kill", "--force", *self.session.user_option(), "-p", name]
            self.session.gb2("removal", command, environment)


def _project_key(job: PreparedJob) -> str:
    """What the project's name is made from: the task id, as b2luigi does (so its projects are found again); for a
    result remade because what makes it changed (another release), the id and the new identity, so the project
    that made the old result is not followed again."""
    if job.result_record:
        path, record = job.result_record
        before = read_json(path)
        digest = record.get("identity", {}).get("digest", "")
        if isinstance(before, dict) and before.get("identity", {}).get("digest", digest) != digest:
            return f"{job.task_id}@{digest}"
    return job.task_id


def _fill_sandbox(job: PreparedJob, grid: GridSettings, sandbox: str) -> list[str]:
    """The project's input sandbox: the pickled path (or the custom steering file), the additional files and the
    steering file; the files gbasf2 must be told of (``-f``)."""
    shutil.rmtree(sandbox, ignore_errors=True)
    os.makedirs(sandbox)
    files = []
    if grid.custom_steering_file:
        shutil.copy(grid.custom_steering_file, sandbox)
    else:
        write_path_and_state(job.task.create_path(), os.path.join(sandbox, projects.PICKLE_FILE))
        files.append(projects.PICKLE_FILE)
    for path in grid.additional_files:
        shutil.copy(path, sandbox)
        files.append(os.path.basename(path))
    with open(os.path.join(sandbox, projects.STEERING_FILE), "w", encoding="utf-8") as handle:
        custom = os.path.basename(grid.custom_steering_file)
        handle.write(projects.steering_file(grid.max_event, custom))
    return files
