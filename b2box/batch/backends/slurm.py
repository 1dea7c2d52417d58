"""Slurm: one job array per wave, one ``squeue`` per poll for all of the workflow's jobs.

Finished jobs leave ``squeue``; their result comes from the wrapper's own
exit record, so accounting (``sacct``, off on many small clusters) is not
needed. Every Slurm state maps onto a b2box state; states b2box does not
know (new ones, or names truncated like ``OUT_OF_ME+``) are reported and
waited on, never a crash.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from typing import Any

from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.prepare import PreparedJob
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


def parse_squeue(output: str) -> dict[str, JobStatus]:
    """``squeue --array --noheader --format=%i|%T|%r`` lines -> job id -> status."""
    found: dict[str, JobStatus] = {}
    for line in output.splitlines():
        if _SEPARATOR not in line:
            continue
        job_id, state_name, reason = [*line.split(_SEPARATOR), "", ""][:3]
        state = state_of(state_name)
        note = ""
        if state is JobState.UNKNOWN:
            note = f"unknown Slurm state {state_name.strip()!r}"
        elif state is JobState.HELD or state_name.strip() not in ("PENDING", "RUNNING"):
            note = f"{state_name.strip()} ({reason.strip()})" if reason.strip() not in ("", "None") else state_name
        found[job_id.strip()] = JobStatus(state, reason=note)
    return found


def sbatch_arguments(wave: Wave, count: int, job_name: str | None, settings: Mapping[str, Any]) -> list[str]:
    """``sbatch`` options of a wave's array: one array task per job, logs beside each job's other logs."""
    arguments = [
        "--parsable",
        f"--array=0-{count - 1}",
        "--output",
        wave.path("%a", "log", "stdout"),
        "--error",
        wave.path("%a", "log", "stderr"),
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


class SlurmBackend:
    """Submits job arrays with ``sbatch`` and follows them with ``squeue``."""

    name = "slurm"

    def __init__(self) -> None:
        if not shutil.which("sbatch"):
            raise B2BoxError("batch_system 'slurm': sbatch was not found on this machine.")
        self.waves = WaveTracker()
        self.calls = {"submit": 0, "query": 0, "remove": 0}

    def submit(self, jobs: Sequence[PreparedJob]) -> dict[str, str]:
        groups: dict[tuple[str, str], list[PreparedJob]] = {}
        for job in jobs:
            batch = settings_of(job.task).batch
            groups.setdefault((batch.job_name, repr(sorted(batch.slurm_settings.items()))), []).append(job)
        submitted: dict[str, str] = {}
        for (name, _), group in groups.items():
            settings = settings_of(group[0].task).batch.slurm_settings
            wave = Wave.create(self.name, group)
            script = wave.path("array.sh")
            with open(script, "w", encoding="utf-8") as handle:
                handle.write(array_script(wave))
            self.calls["submit"] += 1
            done = subprocess.run(
                ["sbatch", *sbatch_arguments(wave, len(group), name or None, settings), script],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise B2BoxError(f"sbatch failed ({done.returncode}): {done.stderr.strip()} (script {script})")
            array_id = done.stdout.strip().split(";")[0]
            ids = {job.task_id: f"{array_id}_{index}" for index, job in enumerate(group)}
            self.waves.add(wave, ids.values())
            submitted.update(ids)
        return submitted

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
        self.calls["query"] += 1
        done = subprocess.run(
            [
                "squeue",
                "--array",
                "--noheader",
                f"--format=%i{_SEPARATOR}%T{_SEPARATOR}%r",
                f"--jobs={','.join(arrays)}",
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise B2BoxError(f"squeue failed ({done.returncode}): {done.stderr.strip()}")
        found = parse_squeue(done.stdout if done.returncode == 0 else "")
        result = {job_id: found.get(job_id, JobStatus(JobState.FINISHED)) for job_id in job_ids}
        self.waves.finished(job_id for job_id, status in result.items() if status.state is JobState.FINISHED)
        return result

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.calls["remove"] += 1
            subprocess.run(["scancel", *job_ids], capture_output=True, text=True)

    def close(self) -> None:
        """Waves of jobs still queued stay: a later run re-attaches to them."""
