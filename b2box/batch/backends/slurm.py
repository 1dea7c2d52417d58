"""Slurm: one job array per wave, one ``squeue`` per poll for all of the workflow's jobs.

Finished jobs leave ``squeue``; their result comes from the wrapper's own
exit record, so accounting (``sacct``, off on many small clusters) is not
needed. Every Slurm state maps onto a b2box state; states b2box does not
know (new ones, or names truncated like ``OUT_OF_ME+``) are reported and
waited on, never a crash.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from b2box.batch.backends.base import JobState, JobStatus, Submitted
from b2box.batch.prepare import PreparedJob
from b2box.batch.retry import BatchCalls, CallFailed
from b2box.batch.waves import Wave, WaveTracker
from b2box.errors import B2BoxError
from b2box.settings.resolved import settings_of

_QUEUED = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "RESV_DEL_HOLD", "POWER_UP_NODE"}
_RUNNING = {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING", "STOPPED"}
_HELD = {"REQUEUE_HOLD", "SPECIAL_EXIT"}
_FINISHED = {
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "REVOKED",
}
_ALL = [*_QUEUED, *_RUNNING, *_HELD, *_FINISHED]
_SEPARATOR = "|"


def state_of(name: str) -> JobState:
    """The b2box state of a Slurm state name, also when truncated (``OUT_OF_ME+``) or suffixed (``CANCELLED by 0``)."""
    word = name.strip().split()[0] if name.strip() else ""
    if word.endswith("+"):
        matches = [known for known in _ALL if known.startswith(word[:-1])]
        word = matches[0] if len(matches) == 1 else word
    for states, state in (
        (_QUEUED, JobState.QUEUED),
        (_RUNNING, JobState.RUNNING),
        (_HELD, JobState.HELD),
        (_FINISHED, JobState.FINISHED),
    ):
        if word in states:
            return state
    return JobState.UNKNOWN


_HOLD_REASONS = {
    "JobHeldUser": "held by its user: release it with scontrol release {id}, or cancel it",
    "JobHeldAdmin": "held by an administrator: ask them to release it, or cancel it",
}


def _note(job_id: str, state_name: str, reason: str, state: JobState) -> str:
    """What a user must hear about a job's state, or nothing for the everyday ones."""
    reason = reason.strip() if reason.strip() not in ("", "None", "(null)") else ""
    if state is JobState.UNKNOWN:
        return f"unknown Slurm state {state_name!r}" + (f" ({reason})" if reason else "") + "; waiting"
    if reason in _HOLD_REASONS:
        return _HOLD_REASONS[reason].format(id=job_id)
    if state_name == "RESV_DEL_HOLD":
        return f"held because its reservation was deleted: release it with scontrol release {job_id}, or cancel it"
    if state is JobState.HELD or state_name in ("SUSPENDED", "STOPPED", "REQUEUED"):
        return f"{state_name} ({reason})" if reason else state_name
    return ""


def parse_squeue(output: str) -> dict[str, JobStatus]:
    """``squeue --array --noheader --format=%i|%T|%r`` lines -> job id -> status; lines it cannot read are skipped."""
    found: dict[str, JobStatus] = {}
    for line in output.splitlines():
        if _SEPARATOR not in line:
            continue
        job_id, state_name, reason = [*line.split(_SEPARATOR), "", ""][:3]
        job_id, state_name = job_id.strip(), state_name.strip()
        if not job_id:
            continue
        state = state_of(state_name)
        found[job_id] = JobStatus(state, reason=_note(job_id, state_name, reason, state))
    return found


def wave_comment(wave: Wave) -> str:
    """The comment that finds a wave's array in the queue again (after a submission whose answer was lost)."""
    return f"b2box:{os.path.basename(wave.folder)}"


def sbatch_arguments(wave: Wave, count: int, job_name: str | None, settings: Mapping[str, Any]) -> list[str]:
    """``sbatch`` options of a wave's array: one array task per job, logs beside each job's other logs."""
    arguments = [
        "--parsable",
        f"--array=0-{count - 1}",
        "--output",
        wave.path("%a", "log", "stdout"),
        "--error",
        wave.path("%a", "log", "stderr"),
        f"--comment={wave_comment(wave)}",
    ]
    if job_name:
        arguments.append(f"--job-name={job_name}")
    for key, value in settings.items():
        arguments.append(f"--{key}" if value is True or value == "" else f"--{key}={value}")
    return arguments


def array_script(wave: Wave) -> str:
    """The array's batch script (Slurm runs a copy of it, so the wave's path is written into it)."""
    return "\n".join(
        [
            "#!/bin/bash",
            "# b2box: array task N runs the wrapper linked as <wave>/N/job.sh",
            'export B2BOX_JOB_ID="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"',
            f'exec /bin/bash {shlex.quote(wave.folder)}/"${{SLURM_ARRAY_TASK_ID}}"/job.sh',
            "",
        ]
    )


def _squeue_answered(done: subprocess.CompletedProcess[str]) -> bool:
    """squeue answers 'Invalid job id' when none of the asked jobs is known any more: they all left."""
    return done.returncode == 0 or "invalid job id" in done.stderr.lower()


def _scancel_done(done: subprocess.CompletedProcess[str]) -> bool:
    """A job that already ended cannot be cancelled, and need not be."""
    text = done.stderr.lower()
    return done.returncode == 0 or "invalid job id" in text or "already complet" in text


class SlurmBackend:
    """Submits job arrays with ``sbatch`` and follows them with ``squeue``, every call under the retry policy."""

    name = "slurm"

    def __init__(self, calls: BatchCalls | None = None) -> None:
        if not shutil.which("sbatch"):
            raise B2BoxError("batch_system 'slurm': sbatch was not found on this machine.")
        self.waves = WaveTracker()
        self.retry = calls or BatchCalls(self.name)
        self.calls = {"submit": 0, "query": 0, "remove": 0}

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        groups: dict[tuple[str, str], list[PreparedJob]] = {}
        for job in jobs:
            batch = settings_of(job.task).batch
            groups.setdefault((batch.job_name, repr(sorted(batch.slurm_settings.items()))), []).append(job)
        for (name, _), group in groups.items():
            settings = settings_of(group[0].task).batch.slurm_settings
            wave = Wave.create(self.name, group)
            script = wave.path("array.sh")
            with open(script, "w", encoding="utf-8") as handle:
                handle.write(array_script(wave))
            command = ["sbatch", *sbatch_arguments(wave, len(group), name or None, settings), script]
            try:
                array_id = self.retry.call("submit", self._sbatch_once(command, wave))
            except CallFailed as refused:
                yield Submitted(refused={job.task_id: f"sbatch refused the job: {refused}" for job in group})
                continue
            ids = {job.task_id: f"{array_id}_{index}" for index, job in enumerate(group)}
            self.waves.add(wave, ids.values())
            yield Submitted(job_ids=ids)

    def _sbatch_once(self, command: list[str], wave: Wave) -> Callable[[], str]:
        """One try of a submission; a try after a failed one first looks whether that one reached Slurm after all
        (an answer lost to a timeout), so a wave is never submitted twice."""
        tried = False

        def once() -> str:
            nonlocal tried
            if tried:
                found = self._array_of(wave)
                if found:
                    return found
            tried = True
            self.calls["submit"] += 1
            done = self.retry.run_once(command)
            array_id = done.stdout.strip().split(";")[0]
            if not array_id:
                raise CallFailed("sbatch answered without a job id", transient=True)
            return array_id

        return once

    def _array_of(self, wave: Wave) -> str:
        """The id of the array submitted for ``wave``, found by its comment, or empty."""
        done = self.retry.run_once(
            ["squeue", "--noheader", f"--user={os.getuid()}", f"--format=%F{_SEPARATOR}%k"], always_transient=True
        )
        for line in done.stdout.splitlines():
            array_id, _, comment = line.partition(_SEPARATOR)
            if comment.strip() == wave_comment(wave):
                return array_id.strip()
        return ""

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
        self.calls["query"] += 1
        done = self.retry.run(
            "status query",
            [
                "squeue",
                "--array",
                "--noheader",
                f"--format=%i{_SEPARATOR}%T{_SEPARATOR}%r",
                f"--jobs={','.join(arrays)}",
            ],
            always_transient=True,
            accept=_squeue_answered,
        )
        found = parse_squeue(done.stdout if done.returncode == 0 else "")
        result = {job_id: found.get(job_id, JobStatus(JobState.FINISHED)) for job_id in job_ids}
        self.waves.finished(job_id for job_id, status in result.items() if status.state is JobState.FINISHED)
        return result

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.calls["remove"] += 1
            self.retry.run("removal", ["scancel", *job_ids], always_transient=True, accept=_scancel_done)

    def close(self, leave_running: bool = False) -> None:
        """Waves of jobs still queued stay: a later run re-attaches to them."""
