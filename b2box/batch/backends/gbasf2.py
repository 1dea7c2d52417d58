"""The Belle II grid through gbasf2: one project per task, one status query per poll for all of the run's projects.

Each task becomes a project named ``gbasf2_project_name_prefix`` + a hash of the task (b2luigi's names, so a
project b2luigi submitted is re-attached too), submitted with the task's basf2 release (``gbasf2_release``, else the
one it is submitted from) and its path pickled into the input sandbox with a steering file that restores it (or
``gbasf2_custom_steering_file``). A project that already exists is monitored, never submitted again.

Every gbasf2 command runs in the environment captured once from ``gbasf2_setup_path`` (``env -i HOME=...``, as
b2luigi does), with no stdin, a timeout and the run's retry policy; questions to DIRAC go through one helper
(gbasf2_query.py) that knows the BelleDIRAC calls of gbasf2 v5 and is refused on a gbasf2 it does not know. The
proxy is checked before the first submission and at every status query: on a terminal b2box asks for the
certificate password once, in this process, and renews it; without one it stops with the command to run, never
waiting on a hidden prompt.

Status is asked every ``gbasf2_status_interval`` seconds (5 minutes by default: DIRAC servers rate-limit), for all
projects at once. Failed, Stalled and Killed jobs are rescheduled up to ``gbasf2_max_retries`` times each (counts
kept in the task's log folder); a job that cannot be retried ends its project as failed, with the failed jobs'
logs fetched into the task's log folder. A complete project's outputs are downloaded into ``<output>.partial``,
retried for the failed files only, checked against the project's file list (the newest reschedule of each job,
every ``sub*`` block) and moved into place only when complete; the logs and a provenance record (release, basf2
version, site, DIRAC job id and reschedules of every job) land in the task's log folder. The outcome is written as
the task's ``exit.json``, so the run judges a project like any job.

gbasf2 is tested against a stand-in (tests/standins/gbasf2) that reproduces its documented behaviour, not against
the real grid.
"""

from __future__ import annotations

import datetime
import getpass
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from b2box.api.structure import flatten_to_dict
from b2box.basf2.serialize import write_path_and_state
from b2box.batch.backends import gbasf2_projects as projects
from b2box.batch.backends.base import JobState, JobStatus, Submitted
from b2box.batch.prepare import PreparedJob
from b2box.batch.retry import BatchCalls, BatchSystemUnavailable, CallFailed
from b2box.errors import B2BoxError
from b2box.job.files import read_json, write_json
from b2box.settings.resolved import GridSettings, settings_of

QUERY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gbasf2_query.py")
SUPPORTED = ("v5", "5.")  # gbasf2 releases whose BelleDIRAC calls this backend knows
RETRIES_FILE = "n_retries_by_grid_job.json"
DOWNLOAD_ATTEMPTS = 3
LOG_FOLDER = "gbasf2_logs"


class GridProxyExpired(BatchSystemUnavailable):
    """The grid proxy ran out during the run and could not be renewed here."""

    def __init__(self, command: str) -> None:
        B2BoxError.__init__(
            self,
            "the grid proxy expired during the run and cannot be renewed without a terminal. Renew it with "
            f"`{command}`, then run the same command again: the projects go on and the next run re-attaches to them.",
        )
        self.system = "gbasf2"


def capture_environment(setup_path: str, group: str) -> dict[str, str]:
    """The environment gbasf2's setup script makes (sourced in a clean shell, as b2luigi does)."""
    if not os.path.isfile(setup_path):
        raise B2BoxError(
            f"gbasf2_setup_path {setup_path} does not exist: set gbasf2_setup_path to your gbasf2 setup script "
            "(since gbasf2 5.8.2: /cvmfs/belle.kek.jp/grid/gbasf2/pro/bashrc)."
        )
    home = os.path.expanduser("~")
    command = f"source {_quote(setup_path)} -g {_quote(group)} > /dev/null 2>&1 < /dev/null; env -0"
    done = subprocess.run(["env", "-i", f"HOME={home}", "bash", "-c", command], capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    environment = {}
    for entry in done.stdout.split(b"\0"):
        name, separator, value = entry.decode(errors="replace").partition("=")
        if separator:
            environment[name] = value
    if "PATH" not in environment:
        raise B2BoxError(f"gbasf2_setup_path {setup_path}: sourcing it gave no environment ({done.stderr[-300:]!r})")
    environment.setdefault("HOME", home)
    return environment


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


class Gbasf2Backend:
    """Submits grid projects with ``gbasf2`` and follows them (see the module docstring)."""

    name = "gbasf2"

    def __init__(self, calls: BatchCalls | None = None) -> None:
        self.retry = calls or BatchCalls(self.name)
        self.calls = {"submit": 0, "query": 0, "remove": 0}
        self._environments: dict[tuple[str, str], dict[str, str]] = {}
        self._checked: set[tuple[str, str]] = set()
        self._user = ""
        self.jobs: dict[str, PreparedJob] = {}  # project -> the task's job
        self._last_query = 0.0
        self._last: dict[str, JobStatus] = {}
        self._progress: dict[str, str] = {}
        self.version = ""

    # -- the gbasf2 environment ------------------------------------------------------------------------

    def environment(self, grid: GridSettings) -> dict[str, str]:
        key = (grid.setup_path, grid.proxy_group)
        if key not in self._environments:
            self._environments[key] = capture_environment(grid.setup_path, grid.proxy_group)
        environment = self._environments[key]
        if key not in self._checked:
            self._check_version(environment, grid)
            self.ensure_proxy(environment, grid)
            self._checked.add(key)
        return environment

    def _ask(self, environment: Mapping[str, str], *question: str) -> Any:
        """One question to DIRAC through the helper; a failing answer is retried (it is often a passing one)."""

        def once() -> Any:
            done = self.retry.run_once(["python3", QUERY, *question], env=environment, always_transient=True)
            try:
                return json.loads(done.stdout)
            except ValueError as error:
                raise CallFailed(f"gbasf2 query {question[0]} printed no JSON ({error})", transient=True) from None

        return self.retry.call(f"{question[0]} query", once)

    def _check_version(self, environment: Mapping[str, str], grid: GridSettings) -> None:
        found = self._ask(environment, "version")
        self.version = str(found.get("belledirac", ""))
        if not self.version.startswith(SUPPORTED):
            raise B2BoxError(
                f"gbasf2 {self.version or '(unknown version)'} at {grid.setup_path} is not one this b2box knows how to "
                "talk to (it knows gbasf2 v5). Use a gbasf2 v5 setup (gbasf2_setup_path) or a b2box that supports it."
            )

    def _proxy_command(self, grid: GridSettings) -> str:
        return (f"source {grid.setup_path} -g {grid.proxy_group} && gb2_proxy_init -g {grid.proxy_group} "
                f"-v {grid.proxy_lifetime}:00")  # fmt: skip

    def ensure_proxy(self, environment: Mapping[str, str], grid: GridSettings, seconds: int | None = None) -> None:
        """A proxy with at least ``gbasf2_min_proxy_lifetime`` hours left, renewed on a terminal, else a clear stop."""
        if seconds is None:
            info = self._ask(environment, "proxy")
            seconds = int(info.get("seconds_left", 0)) if info.get("ok") else 0
            self._user = str(info.get("username") or self._user)
        if seconds > max(60, 3600 * grid.min_proxy_lifetime):
            return
        if not (sys.stdin and sys.stdin.isatty()):
            raise B2BoxError(
                f"no grid proxy with {grid.min_proxy_lifetime} h or more left (it has {seconds} s). Create one and run "
                f"again: {self._proxy_command(grid)}"
            )
        for _ in range(3):
            password = getpass.getpass(f"Certificate password for a {grid.proxy_lifetime} h grid proxy: ")
            done = subprocess.run(
                ["gb2_proxy_init", "-g", grid.proxy_group, "-v", f"{grid.proxy_lifetime}:00", "--pwstdin"],
                input=password + "\n", capture_output=True, text=True, env=dict(environment),
                timeout=self.retry.policy.command_timeout,
            )  # fmt: skip
            text = (done.stdout + done.stderr).lower()
            if "bad pass" in text:
                print("b2box: wrong password, try again", file=sys.stderr)
                continue
            if "error" in text or done.returncode != 0:
                raise B2BoxError(f"gb2_proxy_init failed: {(done.stdout + done.stderr).strip()[-500:]}")
            info = self._ask(environment, "proxy")
            self._user = str(info.get("username") or self._user)
            return
        raise B2BoxError(f"no grid proxy: three wrong passwords. Create one with: {self._proxy_command(grid)}")

    def _gb2(self, operation: str, command: Sequence[str], environment: Mapping[str, str], cwd: str | None = None,
             always_transient: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return self.retry.call(
            operation, lambda: self.retry.run_once(command, env=environment, cwd=cwd, always_transient=always_transient)
        )

    # -- submission ------------------------------------------------------------------------------------

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        named, refused = self._names(jobs)
        if refused:
            yield Submitted(refused=refused)
        existing = self._existing(named)
        for name, job in named.items():
            grid = settings_of(job.task).grid
            try:
                environment = self.environment(grid)
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
                named[projects.project_name(job.task_id, settings_of(job.task).grid)] = job
            except projects.GridSetupError as error:
                refused[job.task_id] = f"{job.task_id}: {error}"
        return named, refused

    def _existing(self, named: Mapping[str, PreparedJob]) -> dict[str, Any]:
        """Which of these projects exist already: one status query for the whole wave."""
        if not named:
            return {}
        first = next(iter(named.values()))
        try:
            environment = self.environment(settings_of(first.task).grid)
        except B2BoxError:
            return {}  # reported per task when it is submitted
        self.calls["query"] += 1
        return dict(self._ask(environment, "status", self._user, *named)["projects"])

    def _submit_project(self, job: PreparedJob, name: str, grid: GridSettings, environment: Mapping[str, str]) -> None:
        release = grid.release or str(getattr(job.task, "git_hash", "") or "")
        if not release or release == "not_set":
            raise projects.GridSetupError("no basf2 release known: set gbasf2_release (or submit from a basf2 setup)")
        sandbox = os.path.join(job.task_dir, "gbasf2")
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
        command = projects.submit_command(name, release, grid, files)
        self.calls["submit"] += 1
        done = self.retry.call("submit", lambda: self.retry.run_once(command, env=environment, cwd=sandbox))
        if "JobID" not in done.stdout:
            raise CallFailed(f"gbasf2 did not report job ids: {done.stdout.strip()[-500:]}", transient=False)
        write_json(os.path.join(job.log_dir, "gbasf2_project.json"),
                   {"project": name, "release": release, "gbasf2": self.version, "submitted": _now(),
                    "input": list(grid.input_dataset) or [grid.input_dslist]})  # fmt: skip

    def follow(self, job_id: str, job: PreparedJob) -> None:
        """The runner hands over the task of a project (also of one submitted by an earlier run)."""
        self.jobs[job_id] = job

    # -- status ----------------------------------------------------------------------------------------

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        interval = min((settings_of(self.jobs[name].task).grid.status_interval for name in job_ids
                        if name in self.jobs), default=0.0)  # fmt: skip
        due = time.monotonic() - self._last_query >= interval or any(name not in self._last for name in job_ids)
        if not due:
            return {name: self._last.get(name, JobStatus(JobState.RUNNING)) for name in job_ids}
        self._last_query = time.monotonic()
        grid = settings_of(self.jobs[job_ids[0]].task).grid if job_ids[0] in self.jobs else None
        environment = self.environment(grid) if grid else next(iter(self._environments.values()))
        self.calls["query"] += 1
        answer = self._ask(environment, "status", self._user, *job_ids)
        if grid is not None and int(answer.get("proxy_seconds", 0)) <= max(60, 3600 * grid.min_proxy_lifetime):
            try:
                self.ensure_proxy(environment, grid, seconds=int(answer.get("proxy_seconds", 0)))
            except B2BoxError:
                raise GridProxyExpired(self._proxy_command(grid)) from None
        result = {}
        for name in job_ids:
            result[name] = self._judge(name, answer["projects"].get(name), environment)
        self._last.update(result)
        return result

    def _judge(self, name: str, jobs: Mapping[str, Mapping[str, Any]] | None, environment: Mapping[str, str]
               ) -> JobStatus:  # fmt: skip
        job = self.jobs.get(name)
        if job is None:  # not handed over yet (re-attaching): only say whether it exists
            return JobStatus(JobState.RUNNING if jobs is not None else JobState.FINISHED)
        grid = settings_of(job.task).grid
        if jobs is None:
            return self._end(job, 1, f"grid project {name} does not exist (any more)")
        state = projects.project_state(jobs)
        if state.unknown:
            self.retry.note(f"b2box: project {name}: unknown DIRAC states {sorted(set(state.unknown.values()))}")
        if state.final_failures or state.retryable:
            counts = read_json(os.path.join(job.log_dir, RETRIES_FILE)) or {}
            again = [job_id for job_id in state.retryable if counts.get(job_id, 0) < grid.max_retries]
            hopeless = {**state.final_failures,
                        **{job_id: projects.describe_failure(jobs[job_id]) for job_id in state.retryable
                           if job_id not in again}}  # fmt: skip
            if hopeless:
                self._fetch_logs(job, name, environment, grid, only=list(hopeless))
                reasons = "; ".join(f"job {job_id}: {why}" for job_id, why in sorted(hopeless.items()))
                return self._end(job, 1, f"grid project {name} failed: {reasons}")
            for job_id in again:
                counts[job_id] = counts.get(job_id, 0) + 1
            write_json(os.path.join(job.log_dir, RETRIES_FILE), counts)
            self._gb2("reschedule", ["gb2_job_reschedule", "--jobid", *again, "--force"], environment)
            self.retry.note(f"b2box: project {name}: rescheduled {len(again)} failed job(s) "
                            f"({', '.join(f'{j} try {counts[j] + 1}' for j in again)})")  # fmt: skip
            return JobStatus(JobState.RUNNING)
        if state.complete:
            return self._collect(job, name, jobs, environment, grid)
        progress = f"{len(state.done)}/{state.jobs} jobs done"
        if grid.print_status_updates and self._progress.get(name) != progress:
            self.retry.note(f"b2box: project {name}: {progress}")
        self._progress[name] = progress
        return JobStatus(JobState.RUNNING)

    # -- outcomes --------------------------------------------------------------------------------------

    def _collect(self, job: PreparedJob, name: str, jobs: Mapping[str, Mapping[str, Any]],
                 environment: Mapping[str, str], grid: GridSettings) -> JobStatus:  # fmt: skip
        """All jobs done: logs, provenance, then the dataset; the project ends when its outputs are in place."""
        if grid.download_logs:
            self._fetch_logs(job, name, environment, grid)
        self._write_provenance(job, name, jobs)
        if grid.download_dataset:
            missing = self._download(job, name, environment, grid)
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
        return self._end(job, 0, f"grid project {name}: all {len(jobs)} jobs done and downloaded")

    def _end(self, job: PreparedJob, code: int, message: str) -> JobStatus:
        """The project's outcome as the task's exit record, its reason in the task's stderr."""
        with open(job.stderr, "a", encoding="utf-8") as handle:
            handle.write(f"b2box: {message}\n")
        write_json(job.exit_file, {"exit_code": code, "end_time": _now(), "host": socket.gethostname()})
        return JobStatus(JobState.FINISHED, reason=message if code else "", exit_code=code)

    def _fetch_logs(self, job: PreparedJob, name: str, environment: Mapping[str, str], grid: GridSettings,
                    only: list[str] | None = None) -> None:  # fmt: skip
        """The jobs' output sandboxes (std.out, the basf2 log) into ``<log folder>/gbasf2_logs/<job id>``."""
        target = os.path.join(job.log_dir, LOG_FOLDER)
        with tempfile.TemporaryDirectory(prefix="b2box-gb2-logs-") as scratch:
            selection = ["-j", *only] if only else ["-p", name]
            user = ["--user", self._user] if self._user else []
            try:
                self._gb2("log download", ["gb2_job_output", *user, *selection], environment, cwd=scratch)
            except CallFailed as error:
                self.retry.note(f"b2box: project {name}: logs not downloaded ({error})")
                return
            for folder in glob.glob(os.path.join(scratch, "log", "**", "*"), recursive=True):
                if os.path.isdir(folder) and os.path.basename(folder).isdigit():
                    destination = os.path.join(target, os.path.basename(folder))
                    shutil.rmtree(destination, ignore_errors=True)
                    shutil.copytree(folder, destination)

    def _write_provenance(self, job: PreparedJob, name: str, jobs: Mapping[str, Mapping[str, Any]]) -> None:
        project = read_json(os.path.join(job.log_dir, "gbasf2_project.json")) or {"project": name}
        records = []
        for job_id, info in sorted(jobs.items()):
            record = {"dirac_job_id": job_id, "site": info.get("Site", ""),
                      "reschedules": int(info.get("RescheduleCounter") or 0), "status": info.get("Status")}  # fmt: skip
            record.update(_reported(os.path.join(job.log_dir, LOG_FOLDER, job_id, "std.out")))
            records.append(record)
        write_json(job.provenance_file, {
            "task_id": job.task_id, "task_family": job.task.task_family, "backend": "gbasf2", "job_id": name,
            "gbasf2_version": self.version, "release": project.get("release", ""), "input": project.get("input", []),
            "start_time": project.get("submitted", ""), "end_time": _now(), "jobs": records,
            "image": {"runtime": "grid", "reference": "chosen by the grid site", "digest": ""},
        })  # fmt: skip

    def _download(self, job: PreparedJob, name: str, environment: Mapping[str, str], grid: GridSettings) -> str:
        """Every output into ``<output>.partial``, then into place once complete; '' or what is still missing."""
        for key, target in sorted(_outputs(job.task).items()):
            final = target.path
            query = projects.dataset_query(key, name, self._user, grid)
            expected = {lfn.rsplit("/", 1)[-1] for lfn in projects.unique_lfns(
                self._ask(environment, "lfns", self._user, query))}  # fmt: skip
            if not expected:
                return f"{key}: the project has no such output"
            if os.path.isdir(final) and set(os.listdir(final)) == expected:
                continue  # downloaded by an earlier run
            partial = final + ".partial"
            os.makedirs(partial, exist_ok=True)
            failed = os.path.join(partial, "failed_files.txt")
            old = os.path.join(partial, "failed_files_old.txt")
            command = [
                "gb2_ds_get",
                *grid.additional_download_params.split(),
                "--force",
                query,
                "--failed_lfns",
                failed,
            ]
            if os.path.isfile(failed) and os.path.getsize(failed):
                os.replace(failed, old)  # only the files that failed last time
                command += ["--input_dslist", old]
            done = self._gb2("download", command, environment, cwd=partial)
            if "No file found" in done.stdout:
                return f"{key}: gb2_ds_get found no file"
            files = {
                os.path.basename(path): path
                for path in glob.glob(os.path.join(partial, "**", "sub*", "*"), recursive=True)
                if os.path.isfile(path)
            }
            for superfluous in set(files) - expected:  # an older reschedule's file: never part of the output
                os.remove(files.pop(superfluous))
            missing = expected - set(files)
            if missing:
                return f"{key}: {len(missing)} of {len(expected)} files missing"
            moving = final + ".b2box-moving"
            shutil.rmtree(moving, ignore_errors=True)
            os.makedirs(moving)
            for base, path in files.items():
                os.replace(path, os.path.join(moving, base))
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(moving, final)  # the complete dataset appears at once
            shutil.rmtree(partial, ignore_errors=True)
        return ""

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        for name in job_ids:
            job = self.jobs.get(name)
            if job is None:
                continue
            environment = self.environment(settings_of(job.task).grid)
            user = ["--user", self._user] if self._user else []
            self.calls["remove"] += 1
            self._gb2("removal", ["gb2_job_kill", "--force", *user, "-p", name], environment)

    def close(self, leave_running: bool = False) -> None:
        """Projects still running go on on the grid: a later run re-attaches to them."""


def _outputs(task: Any) -> dict[str, Any]:
    """``{output name: target}``: the names ``add_to_output`` gave (a bare target's name is its file name)."""
    return {os.path.basename(str(key)) if not isinstance(key, str) else key: target
            for key, target in flatten_to_dict(task.output()).items()}  # fmt: skip


def _reported(path: str) -> dict[str, Any]:
    """What a grid job's steering file reported about itself (the ``b2box-provenance`` line of its std.out)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(projects.PROVENANCE_MARK):
                    return dict(json.loads(line[len(projects.PROVENANCE_MARK) :]))
    except (OSError, ValueError):
        pass
    return {}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
