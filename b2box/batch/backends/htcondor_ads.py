"""What HTCondor's job ads say, read without the schedd: states, ends, which jobs a late-materialising cluster has
not made yet, and the schedd's limits (the pure parts of :mod:`b2box.batch.backends.htcondor`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from b2box.batch.backends.arrays import LimitKind, Limits
from b2box.batch.backends.base import JobState, JobStatus

PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "HoldReasonCode", "ExitCode", "RemoveReason",
              "JobMaterializeNextProcId", "ResidentSetSize"]  # fmt: skip
_HOLD_OUT_OF_RESOURCES = 34  # HoldReasonCode of a job over its cgroup's memory limit
_MEMORY_WORDS = ("memory usage exceeded", "over memory", "memory limit")  # a policy's hold for memory, e.g. code 21
LIMITS = ("MAX_JOBS_PER_SUBMISSION", "MAX_JOBS_PER_OWNER")
# HTCondor's JobStatus codes.
_STATES = {
    1: JobState.QUEUED,
    2: JobState.RUNNING,
    3: JobState.FINISHED,
    4: JobState.FINISHED,
    5: JobState.HELD,
    6: JobState.RUNNING,
    7: JobState.RUNNING,
}
_STATE_NAMES = {
    1: "idle",
    2: "running",
    3: "removed",
    4: "completed",
    5: "held",
    6: "transferring output",
    7: "suspended",
}


def number_of(value: Any) -> int | None:
    """An ad's integer attribute; None when it is missing or not a number (never a crash)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def status_from_ad(ad: Mapping[str, Any]) -> JobStatus:
    """A job ad's state; an unknown or unreadable JobStatus is reported and waited on, never fatal."""
    code = number_of(ad.get("JobStatus"))
    state = _STATES.get(code, JobState.UNKNOWN) if code is not None else JobState.UNKNOWN
    reason = ""
    if code == 5:
        reason = f"held: {ad.get('HoldReason', 'no reason given')}"
    elif code == 3:
        removed = ad.get("RemoveReason")
        reason = f"HTCondor: removed {removed}" if removed else "removed from the queue (condor_rm)"
    elif state is JobState.UNKNOWN:
        reason = f"unknown HTCondor JobStatus {ad.get('JobStatus')!r}; waiting"
    elif code == 7:
        reason = "suspended"
    held = str(ad.get("HoldReason", "")).lower()
    memory = code == 5 and (
        number_of(ad.get("HoldReasonCode")) == _HOLD_OUT_OF_RESOURCES or any(word in held for word in _MEMORY_WORDS)
    )
    resident = number_of(ad.get("ResidentSetSize"))  # kB, as HTCondor measured the job
    return JobStatus(state, reason=reason, exit_code=number_of(ad.get("ExitCode")), memory_kill=memory,
                     memory_used=resident * 1024 if memory and resident else None)  # fmt: skip


HISTORY = ["ClusterId", "ProcId", "JobStatus", "RemoveReason", "ExitCode", "ExitBySignal", "ExitSignal"]


def what_htcondor_says(ad: Mapping[str, Any]) -> str:
    """A job's end as HTCondor's history recorded it: 'HTCondor: removed via condor_rm (by user alice)'."""
    if ad.get("RemoveReason"):
        return f"HTCondor: removed {ad['RemoveReason']}"
    if ad.get("ExitBySignal"):
        return f"HTCondor: killed by signal {ad.get('ExitSignal', '?')}"
    if ad.get("ExitCode") is not None:
        return f"HTCondor: exited with code {ad['ExitCode']}"
    return ""


def clusters_constraint(job_ids: Sequence[str]) -> str:
    """One constraint matching all clusters of ``job_ids`` (``"12.3"``)."""
    clusters = sorted({int(job_id.split(".")[0]) for job_id in job_ids})
    return "member(ClusterId, {" + ", ".join(str(cluster) for cluster in clusters) + "})"


def statuses(job_ids: Sequence[str], ads: Sequence[Mapping[str, Any]]) -> dict[str, JobStatus]:
    """Every requested job's status; jobs no longer in the queue have finished, except those a late-materialising
    cluster has not made yet (ProcId at or past its ``JobMaterializeNextProcId``, which its cluster ad and each of its
    job ads carry), which are queued. Ads without ids are skipped."""
    found = {}
    unmade: dict[int, int] = {}  # cluster -> the first ProcId it has not materialised yet
    for ad in ads:
        cluster, process = number_of(ad.get("ClusterId")), number_of(ad.get("ProcId"))
        following = number_of(ad.get("JobMaterializeNextProcId"))
        if cluster is not None and following is not None:
            unmade[cluster] = following
        if cluster is not None and process is not None:
            found[f"{cluster}.{process}"] = status_from_ad(ad)
    result = {}
    for job_id in job_ids:
        number, _, proc = job_id.partition(".")
        status = found.get(job_id)
        if status is None:
            first_unmade = unmade.get(int(number))
            waiting = first_unmade is not None and int(proc) >= first_unmade
            status = JobStatus(JobState.QUEUED) if waiting else JobStatus(JobState.FINISHED)
        result[job_id] = status
    return result


def limits_of(config: Mapping[str, str | None], per_submission: int | None) -> Limits:
    """The run's limits from the schedd's configuration (``MAX_JOBS_PER_SUBMISSION``, ``MAX_JOBS_PER_OWNER``), the
    setting winning where set."""
    found = {name: int(value) for name, value in config.items() if value is not None and str(value).isdigit()}
    said = ", ".join(f"{name} = {value}" for name, value in found.items())
    return Limits(
        array_size=per_submission or found.get("MAX_JOBS_PER_SUBMISSION"),
        queued=found.get("MAX_JOBS_PER_OWNER"),
        source=f"{said} (HTCondor's configuration)" if said else "",
    )


def limit_of_refusal(message: str) -> LimitKind:
    """The limit a refused submission names: the jobs of one submission, the jobs in the queue, or none."""
    if "MAX_JOBS_PER_SUBMISSION" in message:
        return "array"
    if "MAX_JOBS_PER_OWNER" in message or "MAX_JOBS_SUBMITTED" in message or "MAX_JOBS_RUNNING" in message:
        return "queue"
    return ""
