"""HTCondor: one cluster per wave, one query per poll for all of the workflow's jobs.

The schedd is reached through HTCondor's Python bindings (``htcondor2``, or
the older ``htcondor`` module) when they are importable, else through
``condor_submit``/``condor_q``/``condor_rm``. Both paths share the pure parts
below: the submit description of a wave, and the mapping of job ads to
:class:`~b2box.batch.backends.base.JobStatus`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from b2box.batch import transfer
from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.prepare import PreparedJob
from b2box.batch.waves import Wave, WaveTracker
from b2box.errors import B2BoxError
from b2box.settings.resolved import settings_of

PROJECTION = ["ClusterId", "ProcId", "JobStatus", "HoldReason", "ExitCode"]
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


def _bindings() -> Any:
    for name in ("htcondor2", "htcondor"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def quote_argument(value: str) -> str:
    """One word in HTCondor's new ``arguments`` syntax (wrapped in double quotes by the caller)."""
    return "'" + value.replace('"', '""').replace("'", "''") + "'"


def classad_string(value: str) -> str:
    """A ClassAd string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def container_lines(mode: str, image: str) -> dict[str, str]:
    """HTCondor starts the image itself: the container universe, or a site's ``+SingularityImage`` convention."""
    if mode == "container_image":
        # shared filesystem: the worker node reads the image where it is, nothing is transferred
        return {"universe": "container", "container_image": image, "transfer_container": "false"}
    if mode == "singularity_image":
        return {"+SingularityImage": classad_string(image)}
    return {}


def transfer_lines(wave: Wave) -> dict[str, str]:
    """No shared filesystem: HTCondor carries the launcher and each job's bundle in, its results out."""
    returned = wave.path("$(ProcId)", "log", transfer.RETURNED)
    return {
        "executable": wave.path(transfer.LAUNCHER_FILE),
        "transfer_executable": "true",
        "arguments": "",
        "should_transfer_files": "YES",
        "when_to_transfer_output": "ON_EXIT",
        "transfer_input_files": wave.path("$(ProcId)", "log", transfer.BUNDLE),
        "transfer_output_files": transfer.RETURNED,
        "transfer_output_remaps": f'"{transfer.RETURNED} = {returned}"',
    }


def submit_description(
    wave: Wave,
    job_name: str | None,
    settings: Mapping[str, Any],
    container: tuple[str, str] = ("", ""),
    moving: bool = False,
) -> dict[str, str]:
    """The submit description of a wave: every job runs ``bash <wave>/<ProcId>/job.sh`` (in ``container``'s
    image when HTCondor starts it: (mode, image))."""
    description = {
        "universe": "vanilla",
        "executable": "/bin/bash",
        "transfer_executable": "false",
        "arguments": '"' + quote_argument(wave.path("$(ProcId)", "job.sh")) + '"',
        "output": wave.path("$(ProcId)", "log", "stdout"),
        "error": wave.path("$(ProcId)", "log", "stderr"),
        "log": wave.path("events.log"),
        "environment": '"B2BOX_JOB_ID=$(ClusterId).$(ProcId)"',
        "getenv": "false",
        **container_lines(*container),
        **(transfer_lines(wave) if moving else {}),
    }
    if job_name:
        description["JobBatchName"] = '"' + job_name.replace('"', "'") + '"'
    for key, value in settings.items():
        description[str(key)] = str(value)
    return description


def status_from_ad(ad: Mapping[str, Any]) -> JobStatus:
    """A job ad's state; an unknown JobStatus is reported, never fatal."""
    code = int(ad.get("JobStatus", 0))
    state = _STATES.get(code, JobState.UNKNOWN)
    reason = ""
    if code == 5:
        reason = f"held: {ad.get('HoldReason', 'no reason given')}"
    elif code == 3:
        reason = "removed from the queue (condor_rm)"
    elif state is JobState.UNKNOWN:
        reason = f"unknown HTCondor JobStatus {code}"
    exit_code = ad.get("ExitCode")
    return JobStatus(state, reason=reason, exit_code=int(exit_code) if exit_code is not None else None)


def clusters_constraint(job_ids: Sequence[str]) -> str:
    """One constraint matching all clusters of ``job_ids`` (``"12.3"``)."""
    clusters = sorted({int(job_id.split(".")[0]) for job_id in job_ids})
    return "member(ClusterId, {" + ", ".join(str(cluster) for cluster in clusters) + "})"


def statuses(job_ids: Sequence[str], ads: Sequence[Mapping[str, Any]]) -> dict[str, JobStatus]:
    """Every requested job's status; jobs no longer in the queue have finished."""
    found = {f"{int(ad['ClusterId'])}.{int(ad['ProcId'])}": status_from_ad(ad) for ad in ads}
    return {job_id: found.get(job_id, JobStatus(JobState.FINISHED)) for job_id in job_ids}


def _group(jobs: Sequence[PreparedJob]) -> dict[tuple[str, str, str, str, bool], list[PreparedJob]]:
    """Jobs that share settings (the image HTCondor starts, if any, and file transfer) share a cluster."""
    groups: dict[tuple[str, str, str, str, bool], list[PreparedJob]] = {}
    for job in jobs:
        batch = settings_of(job.task).batch
        key = (
            batch.job_name,
            json.dumps(batch.htcondor_settings, sort_keys=True, default=str),
            job.container_mode,
            job.container_image,
            job.transfer,
        )
        groups.setdefault(key, []).append(job)
    return groups


class HTCondorBackend:
    """Submits and follows jobs on the local schedd."""

    name = "htcondor"

    def __init__(self, use_bindings: bool | None = None) -> None:
        self._module: Any = _bindings() if use_bindings in (None, True) else None
        if use_bindings and self._module is None:
            raise B2BoxError("HTCondor's Python bindings are not importable; install htcondor (pip) or use the CLI.")
        if self._module is None and not shutil.which("condor_submit"):
            raise B2BoxError("batch_system 'htcondor': neither HTCondor's Python bindings nor condor_submit found.")
        self._schedd = self._module.Schedd() if self._module is not None else None
        self.waves = WaveTracker()
        self.calls = {"submit": 0, "query": 0, "remove": 0}

    @property
    def via(self) -> str:
        return "bindings" if self._module is not None else "command line"

    def submit(self, jobs: Sequence[PreparedJob]) -> dict[str, str]:
        submitted: dict[str, str] = {}
        for (name, settings, mode, image, moving), group in _group(jobs).items():
            wave = Wave.create(self.name, group)
            if moving:
                with open(wave.path(transfer.LAUNCHER_FILE), "w", encoding="utf-8") as handle:
                    handle.write(transfer.LAUNCHER)
            description = submit_description(wave, name or None, json.loads(settings), (mode, image), moving)
            cluster = self._submit(wave, description, len(group))
            ids = {job.task_id: f"{cluster}.{index}" for index, job in enumerate(group)}
            self.waves.add(wave, ids.values())
            submitted.update(ids)
        return submitted

    def _submit(self, wave: Wave, description: dict[str, str], count: int) -> int:
        self.calls["submit"] += 1
        if self._schedd is not None:
            result = self._schedd.submit(self._module.Submit(description), count=count)
            return int(result.cluster())
        path = wave.path("submit.sub")
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(f"{key} = {value}\n" for key, value in description.items())
            handle.write(f"queue {count}\n")
        done = subprocess.run(["condor_submit", "-terse", path], capture_output=True, text=True)
        if done.returncode != 0:
            raise B2BoxError(f"condor_submit failed ({done.returncode}): {done.stderr.strip()} (submit file {path})")
        return int(done.stdout.split(".")[0])

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        found = statuses(job_ids, self._query(clusters_constraint(job_ids)))
        self.waves.finished(job_id for job_id, status in found.items() if status.state is JobState.FINISHED)
        return found

    def _query(self, constraint: str) -> list[Mapping[str, Any]]:
        self.calls["query"] += 1
        if self._schedd is not None:
            return [dict(ad) for ad in self._schedd.query(constraint=constraint, projection=PROJECTION)]
        done = subprocess.run(
            ["condor_q", "-json", "-constraint", constraint, "-attributes", ",".join(PROJECTION)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise B2BoxError(f"condor_q failed ({done.returncode}): {done.stderr.strip()}")
        text = done.stdout.strip()
        return list(json.loads(text)) if text else []

    def wait(self, timeout: float) -> None:
        import time

        time.sleep(timeout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        self.calls["remove"] += 1
        if self._schedd is not None:
            self._schedd.act(self._module.JobAction.Remove, list(job_ids))
            return
        subprocess.run(["condor_rm", *job_ids], capture_output=True, text=True)

    def close(self) -> None:
        """Waves of jobs still queued stay: a later run re-attaches to them."""
