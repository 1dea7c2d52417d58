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
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from b2box.batch.backends.arrays import ArrayBackend, LimitKind, Limits
from b2box.batch.backends.base import Capabilities, JobState, JobStatus
from b2box.batch.jobs import PreparedJob
from b2box.batch.memory import with_request
from b2box.batch.retry import CallFailed
from b2box.batch.waves import Wave
from b2box.settings.declared import SettingGroup
from b2box.settings.resolved import run_group, settings_of
from b2box.settings.sizes import megabytes

if TYPE_CHECKING:
    from b2box.settings.types import PositiveInt


class SlurmSettings(SettingGroup):
    """Slurm's own settings."""

    slurm_settings: dict[str, Any] = {}
    """``sbatch`` options, e.g. ``{"partition": "short", "time": "01:00:00"}``."""
    slurm_max_array_size: PositiveInt | None = None
    """Largest job array b2box submits; unset: the cluster's ``MaxArraySize`` (``scontrol show config``)."""
    slurm_max_jobs: PositiveInt | None = None
    """Most of a run's jobs in the queue at once; unset: 90 % of the cluster's ``MaxJobCount``, which counts every
    user's jobs."""


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
        memory = state_name.startswith("OUT_OF_ME")  # (squeue may cut it to OUT_OF_ME+)
        found[job_id] = JobStatus(state, reason=_note(job_id, state_name, reason, state), memory_kill=memory)
    return found


def wave_comment(wave: Wave) -> str:
    """The comment that finds a wave's array in the queue again (after a submission whose answer was lost)."""
    return f"b2box:{wave.tag}"


def sbatch_arguments(
    wave: Wave, count: int, job_name: str | None, settings: Mapping[str, Any], throttle: int | None = None
) -> list[str]:
    """``sbatch`` options of a wave's array: one array task per job, logs beside each job's other logs, at most
    ``throttle`` of them running at once."""
    arguments = [
        "--parsable",
        f"--array=0-{count - 1}" + (f"%{throttle}" if throttle and throttle < count else ""),
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


def parse_scontrol(output: str) -> dict[str, dict[str, str]]:
    """``scontrol -o show job`` lines -> ``{"<array>_<index>" or "<job>": {field: value}}``."""
    found = {}
    for line in output.splitlines():
        fields = dict(word.partition("=")[::2] for word in line.split() if "=" in word)
        if "JobId" not in fields:
            continue
        array, index = fields.get("ArrayJobId", ""), fields.get("ArrayTaskId", "")
        found[f"{array}_{index}" if array and index.isdigit() else fields["JobId"]] = fields
    return found


_SIG_OOM = "125"  # Slurm's SIG_OOM (253), as scontrol's ExitCode shows it (0:125) for a job killed for memory


def what_slurm_says(fields: Mapping[str, str]) -> str:
    """A job's end as Slurm recorded it: 'Slurm: CANCELLED (killed by signal 15)'."""
    state = fields.get("JobState", "?")
    reason = fields.get("Reason", "None")
    code, _, number = fields.get("ExitCode", "").partition(":")
    details = [f"reason {reason}"] if reason not in ("None", "") else []
    if state == "OUT_OF_MEMORY" or number == _SIG_OOM:
        details.append("killed for memory")
    elif number not in ("", "0"):
        details.append(f"killed by signal {number}")
    elif code not in ("", "0"):
        details.append(f"exit code {code}")
    return f"Slurm: {state}" + (f" ({', '.join(details)})" if details else "")


_ARRAY_REFUSALS = ("invalid job array specification", "maxarraysize")
_QUEUE_REFUSALS = ("maxjobcount", "maxsubmitjob", "job violates accounting/qos policy", "too many jobs")
_QUEUE_SHARE = 0.9  # of MaxJobCount, which every user's jobs share


def parse_config(output: str) -> dict[str, str]:
    """``scontrol show config`` lines (``Name = value``) -> {name: value}."""
    found = {}
    for line in output.splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip() and " " not in name.strip():
            found[name.strip()] = value.strip()
    return found


def limits_of(config: Mapping[str, str], max_array_size: int | None, max_jobs: int | None) -> Limits:
    """The run's limits from the cluster's configuration (``MaxArraySize`` N allows indices 0 to N-1, so arrays of N
    jobs), the settings winning where set."""
    said = []
    array_size = max_array_size
    if array_size is None and str(config.get("MaxArraySize", "")).isdigit():
        array_size = int(config["MaxArraySize"])
        said.append(f"MaxArraySize = {array_size}")
    queued = max_jobs
    if queued is None and str(config.get("MaxJobCount", "")).isdigit():
        queued = max(1, int(int(config["MaxJobCount"]) * _QUEUE_SHARE))
        said.append(f"MaxJobCount = {config['MaxJobCount']}")
    source = (", ".join(said) + " (scontrol show config)") if said else "the settings slurm_max_*"
    return Limits(array_size=array_size, queued=queued, source=source)


def limit_of_refusal(message: str) -> LimitKind:
    """The limit an ``sbatch`` refusal names: the array's size, the number of jobs, or none."""
    text = message.lower()
    if any(words in text for words in _ARRAY_REFUSALS):
        return "array"
    if any(words in text for words in _QUEUE_REFUSALS):
        return "queue"
    return ""


def _squeue_answered(done: subprocess.CompletedProcess[str]) -> bool:
    """squeue answers 'Invalid job id' when none of the asked jobs is known any more: they all left."""
    return done.returncode == 0 or "invalid job id" in done.stderr.lower()


def _scancel_done(done: subprocess.CompletedProcess[str]) -> bool:
    """A job that already ended cannot be cancelled, and need not be."""
    text = done.stderr.lower()
    return done.returncode == 0 or "invalid job id" in text or "already complet" in text


class SlurmBackend(ArrayBackend):
    """Submits job arrays with ``sbatch`` and follows them with ``squeue``, every call under the retry policy."""

    name = "slurm"
    capabilities = Capabilities(throttles_arrays=True)
    required_command = "sbatch"
    refused_by = "sbatch refused the job"

    def group_key(self, job: PreparedJob) -> Hashable:
        """Jobs with equal settings share an array; a family's max_jobs_in_flight becomes its array's throttle."""
        settings = settings_of(job.task)
        slurm = repr(sorted(settings.group(SlurmSettings).slurm_settings.items()))
        throttled = (
            (job.task.task_family, settings.batch.max_jobs_in_flight) if settings.batch.max_jobs_in_flight else ()
        )
        return (settings.batch.job_name, slurm, throttled)

    def find_limits(self) -> Limits:
        """``MaxArraySize`` and ``MaxJobCount``, read once per run (the settings win)."""
        own = run_group(SlurmSettings)
        if own.slurm_max_array_size is not None and own.slurm_max_jobs is not None:
            return limits_of({}, own.slurm_max_array_size, own.slurm_max_jobs)
        done = self.retry.run_once(["scontrol", "show", "config"], always_transient=True)
        return limits_of(parse_config(done.stdout), own.slurm_max_array_size, own.slurm_max_jobs)

    def limit_refused(self, message: str) -> LimitKind:
        return limit_of_refusal(message)

    def submit_array(self, wave: Wave) -> str:
        settings = settings_of(wave.jobs[0].task)
        script = wave.path("array.sh")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(array_script(wave))
        first = wave.jobs[0]
        options = with_request(first.task, first.request_memory, settings.group(SlurmSettings).slurm_settings,
                               ("mem", "mem-per-cpu", "mem_per_cpu", "mem-per-gpu", "mem_per_gpu"),
                               ("mem", f"{megabytes(first.request_memory or 0)}M"), "slurm_settings")  # fmt: skip
        throttle = settings.batch.max_jobs_in_flight
        arguments = sbatch_arguments(wave, len(wave.jobs), settings.batch.job_name or None, options, throttle)
        done = self.retry.run_once(["sbatch", *arguments, script])
        array_id = done.stdout.strip().split(";")[0]
        if not array_id:
            raise CallFailed("sbatch answered without a job id", transient=True)
        return array_id

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        """One ``squeue`` of the user's jobs with their comments (the waves' tags)."""
        done = self.retry.run_once(
            ["squeue", "--noheader", f"--user={os.getuid()}", f"--format=%F{_SEPARATOR}%k"], always_transient=True
        )
        tags = {wave_comment(wave): wave.tag for wave in waves}
        found = {}
        for line in done.stdout.splitlines():
            array_id, _, comment = line.partition(_SEPARATOR)
            if comment.strip() in tags:
                found[tags[comment.strip()]] = array_id.strip()
        return found

    def job_id(self, array_id: str, index: int) -> str:
        return f"{array_id}_{index}"

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
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
        return parse_squeue(done.stdout if done.returncode == 0 else "")

    def remove(self, job_ids: Sequence[str]) -> None:
        self.retry.run("removal", ["scancel", *job_ids], always_transient=True, accept=_scancel_done)

    def explain(self, job_ids: Sequence[str]) -> dict[str, str]:
        """What Slurm recorded of ended jobs, while it still knows them (``MinJobAge``; no accounting needed)."""
        done = self.retry.run_once(["scontrol", "-o", "show", "job"], always_transient=True)
        known = parse_scontrol(done.stdout)
        return {job_id: what_slurm_says(known[job_id]) for job_id in job_ids if job_id in known}
