"""LSF (KEKCC and other LSF farms): one job array per wave, one ``bjobs`` per poll for all of the run's jobs.

A wave of ready tasks goes out as ``bsub < array.sh``, an array ``-J "name[1-K]"`` (split at
``lsf_array_size``, LSF's default MAX_JOB_ARRAY_SIZE being 1000) whose options are ``#BSUB`` lines of the script:
given on stdin, LSF reads them on every site (given as an argument, only where LSB_BSUB_PARSE_SCRIPT=Y). Element
``i`` runs the wrapper linked as ``<wave>/i/job.sh`` (``$LSB_JOBINDEX``), and its id is ``<array id>[i]``.

One ``bjobs -json -a -o "..."`` answers for all of the run's arrays. Its STAT drives the verdict, never EXIT_CODE
(empty for every DONE job and for many EXIT ones); a job missing from the answer, or answered with an ``ERROR``
record, has left LSF (finished jobs vanish after CLEAN_PERIOD) and is judged, like on every backend, by its own
``exit.json`` and outputs, so a job that succeeded and aged out counts as a success.

The state map (LSF's STAT values, IBM's bjobs documentation):

=========  ===========  =================================================================================
STAT       b2box        told to the user
=========  ===========  =================================================================================
PEND       queued
PROV       queued       (a dynamic host is being provisioned)
WAIT       queued       (a chunk job waiting to run)
PSUSP      queued       suspended while pending, by its owner or an admin: ``bresume <id>`` releases it
RUN        running
USUSP      running      suspended while running, by its owner or an admin: ``bresume <id>``
SSUSP      running      suspended by LSF (load or run window): it resumes by itself
UNKWN      unknown      mbatchd lost contact with the job's host: waited on
ZOMBI      finished     killed, its host unreachable: judged by its exit record
DONE       finished     judged by its exit record and outputs
EXIT       finished     judged by its exit record (a killed job has none: a failure)
anything   unknown      an unknown STAT is reported and waited on
=========  ===========  =================================================================================

``bsub`` exits 255 for every error; one that says LSF was not reached ("Cannot connect to LSF. Please wait")
is retried, one that ends in ``Job not submitted.`` for a reason of its own (no such queue, a bad ``-n``) fails
the tasks with LSF's message. ``bsub`` can also exit 0 with an empty answer, with or without having submitted:
before it is tried again, the wave is looked up by its job description (``-Jd``), so it never goes out twice.
"""

from __future__ import annotations

import json
import os
import re
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
from b2box.settings.resolved import BatchSettings, settings_of

STATES = {
    "PEND": JobState.QUEUED,
    "PROV": JobState.QUEUED,
    "WAIT": JobState.QUEUED,
    "PSUSP": JobState.QUEUED,
    "RUN": JobState.RUNNING,
    "USUSP": JobState.RUNNING,
    "SSUSP": JobState.RUNNING,
    "UNKWN": JobState.UNKNOWN,
    "ZOMBI": JobState.FINISHED,
    "DONE": JobState.FINISHED,
    "EXIT": JobState.FINISHED,
}
_NOTES = {
    "PSUSP": "suspended while pending (by its owner or an admin): bresume {id} releases it",
    "USUSP": "suspended while running (by its owner or an admin): bresume {id} resumes it",
    "SSUSP": "suspended by LSF (load or run window); it resumes by itself",
    "UNKWN": "LSF lost contact with the job's host (UNKWN); waiting",
    "ZOMBI": "LSF lost the job's host while killing it (ZOMBI)",
}
FIELDS = "jobid jobindex stat exit_code exit_reason pend_reason"
_SUBMITTED = re.compile(r"Job <(\d+)> is submitted to (?:default )?queue")
_GONE = re.compile(r"Job <[^>]+>: (Job has already finished|No matching job found)")


def job_id(array_id: str, index: int) -> str:
    """``123[4]``: how LSF names element 4 of array 123."""
    return f"{array_id}[{index}]"


def parse_bsub(output: str) -> str | None:
    """The job id in bsub's answer (``... is submitted to queue <q>.`` or ``... to default queue <q>.``, with
    anything before it), or None."""
    found = _SUBMITTED.search(output)
    return found.group(1) if found else None


def status_of(record: Mapping[str, Any]) -> JobStatus:
    """One ``bjobs -json`` record; an unknown STAT is UNKNOWN with a reason, never a crash."""
    stat = str(record.get("STAT", "")).strip()
    state = STATES.get(stat, JobState.UNKNOWN)
    identity = job_id(str(record.get("JOBID", "")), int(record.get("JOBINDEX") or 0))
    note = _NOTES.get(stat, "").format(id=identity)
    if state is JobState.UNKNOWN and stat not in STATES:
        note = f"unknown LSF state {stat!r}; waiting"
    if stat == "EXIT" and record.get("EXIT_REASON"):
        note = str(record["EXIT_REASON"])
    code = str(record.get("EXIT_CODE", "")).strip()
    return JobStatus(state, reason=note, exit_code=int(code) if code.isdigit() else None)


def parse_bjobs(text: str) -> dict[str, JobStatus]:
    """``bjobs -json -o "jobid jobindex stat ..."`` -> ``{"123[4]": status}``; ERROR records (unknown or aged-out
    ids) are left out; raises ValueError when the answer is not complete JSON."""
    data = json.loads(text)
    found: dict[str, JobStatus] = {}
    for record in data.get("RECORDS", []):
        if "ERROR" in record or "JOBID" not in record:
            continue
        index = str(record.get("JOBINDEX") or "0").strip()
        found[job_id(str(record["JOBID"]).strip(), int(index) if index.isdigit() else 0)] = status_of(record)
    return found


def _quoted(value: Any) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def refusal(batch: BatchSettings) -> str:
    """Why a task's LSF settings cannot become ``#BSUB`` lines (a line break would add lines of its own), or empty."""
    values = {
        "job_name": batch.job_name,
        "queue": batch.queue or "",
        **{f"lsf_settings {key!r}": f"{key}{value}" for key, value in batch.lsf_settings.items()},
    }
    for setting, value in values.items():
        if "\n" in value or "\r" in value:
            return f"setting {setting} contains a line break; write it on one line"
    return ""


def array_name(job_name: str) -> str:
    """A job name LSF's array syntax cannot misread (no brackets, quotes or spaces)."""
    return re.sub(r"[\[\]\"'\s]", "_", job_name) or "b2box"


def wave_description(wave: Wave) -> str:
    """The job description (``-Jd``) that finds a wave's array again after an answer was lost."""
    return f"b2box:{os.path.basename(wave.folder)}"


def array_script(wave: Wave, count: int, batch: BatchSettings) -> str:
    """The array's script: its options as ``#BSUB`` lines, then element ``$LSB_JOBINDEX`` runs its wrapper."""
    lines = [
        "#!/bin/bash",
        f"#BSUB -J {_quoted(array_name(batch.job_name) + f'[1-{count}]')}",
        f"#BSUB -Jd {_quoted(wave_description(wave))}",
        f"#BSUB -oo {_quoted(wave.path('%I', 'log', 'stdout'))}",
        f"#BSUB -eo {_quoted(wave.path('%I', 'log', 'stderr'))}",
    ]
    if batch.queue:
        lines.append(f"#BSUB -q {_quoted(batch.queue)}")
    if batch.job_slots is not None:
        lines.append(f"#BSUB -n {int(batch.job_slots)}")
    for key, value in batch.lsf_settings.items():
        lines.append(f"#BSUB {key}" if value is True or value == "" else f"#BSUB {key} {_quoted(value)}")
    lines += [
        "# b2box: element N of this array runs the wrapper linked as <wave>/N/job.sh",
        'export B2BOX_JOB_ID="${LSB_JOBID}[${LSB_JOBINDEX}]"',
        f'exec /bin/bash {_quoted(wave.folder)}/"${{LSB_JOBINDEX}}"/job.sh',
        "",
    ]
    return "\n".join(lines)


def _bkill_done(done: subprocess.CompletedProcess[str]) -> bool:
    """bkill exits 255 when a job already finished or is unknown: for removal, that is success."""
    problems = [line for line in done.stderr.splitlines() if line.strip() and not _GONE.search(line)]
    return done.returncode == 0 or not problems


class LSFBackend:
    """Submits job arrays with ``bsub`` and follows them with ``bjobs``, every call under the retry policy."""

    name = "lsf"

    def __init__(self, calls: BatchCalls | None = None) -> None:
        if not shutil.which("bsub"):
            raise B2BoxError("batch_system 'lsf': bsub was not found on this machine.")
        self.waves = WaveTracker()
        self.retry = calls or BatchCalls(self.name)
        self.calls = {"submit": 0, "query": 0, "remove": 0}

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        groups: dict[str, list[PreparedJob]] = {}
        refused: dict[str, str] = {}
        for job in jobs:
            batch = settings_of(job.task).batch
            problem = refusal(batch)
            if problem:
                refused[job.task_id] = problem
                continue
            key = json.dumps(
                [batch.job_name, batch.queue, batch.job_slots, batch.lsf_settings, batch.lsf_array_size], default=str
            )
            groups.setdefault(key, []).append(job)
        if refused:
            yield Submitted(refused=refused)
        for group in groups.values():
            batch = settings_of(group[0].task).batch
            size = max(1, batch.lsf_array_size)
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                wave = Wave.create(self.name, chunk, first=1)
                script = array_script(wave, len(chunk), batch)
                with open(wave.path("array.sh"), "w", encoding="utf-8") as handle:
                    handle.write(script)
                try:
                    array_id = self.retry.call("submit", self._bsub_once(script, wave))
                except CallFailed as error:
                    yield Submitted(refused={job.task_id: f"bsub refused the job: {error}" for job in chunk})
                    continue
                ids = {job.task_id: job_id(array_id, index) for index, job in enumerate(chunk, start=1)}
                self.waves.add(wave, ids.values())
                yield Submitted(job_ids=ids)

    def _bsub_once(self, script: str, wave: Wave) -> Callable[[], str]:
        """One try; a try after a failed one first looks whether that one reached LSF after all."""
        tried = False

        def once() -> str:
            nonlocal tried
            if tried:
                found = self._array_of(wave)
                if found:
                    return found
            tried = True
            self.calls["submit"] += 1
            done = self.retry.run_once(["bsub"], input_text=script)
            array_id = parse_bsub(done.stdout)
            if array_id is None:  # seen on production farms: exit 0, nothing said
                raise CallFailed(f"bsub answered without a job id ({done.stdout.strip()!r})", transient=True)
            return array_id

        return once

    def _array_of(self, wave: Wave) -> str:
        """The id of the array submitted for ``wave``, found by its job description, or empty."""
        done = self.retry.run_once(
            ["bjobs", "-a", "-json", "-o", "jobid job_description"], always_transient=True, accept=lambda d: True
        )
        try:
            records = json.loads(done.stdout).get("RECORDS", [])
        except ValueError as error:
            raise CallFailed(f"bjobs printed no valid JSON ({error})", transient=True) from None
        for record in records:
            if str(record.get("JOB_DESCRIPTION", "")) == wave_description(wave):
                return str(record.get("JOBID", ""))
        return ""

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not job_ids:
            return {}
        arrays = sorted({identity.split("[")[0] for identity in job_ids}, key=int)
        found = self.retry.call("status query", lambda: self._query(arrays))
        result = {identity: found.get(identity, JobStatus(JobState.FINISHED)) for identity in job_ids}
        self.waves.finished(identity for identity, status in result.items() if status.state is JobState.FINISHED)
        return result

    def _query(self, arrays: list[str]) -> dict[str, JobStatus]:
        """One bjobs for every array; an answer that is not complete JSON (bjobs exited 255 half-way) is retried."""
        self.calls["query"] += 1
        done = self.retry.run_once(
            ["bjobs", "-json", "-a", "-o", FIELDS, *arrays], always_transient=True, accept=lambda d: True
        )
        try:
            return parse_bjobs(done.stdout)
        except (ValueError, AttributeError) as error:
            message = done.stderr.strip() or str(error)
            raise CallFailed(f"bjobs exited with {done.returncode}: {message[-500:]}", transient=True) from None

    def wait(self, timeout: float) -> None:
        time.sleep(timeout)

    def cancel(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            self.calls["remove"] += 1
            self.retry.run("removal", ["bkill", *job_ids], always_transient=True, accept=_bkill_done)

    def close(self, leave_running: bool = False) -> None:
        """Arrays still queued stay: a later run re-attaches to them."""


def version() -> str:
    """The LSF version (``lsid``'s first line), or empty when LSF is not here."""
    if not shutil.which("lsid"):
        return ""
    try:
        done = subprocess.run(["lsid"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.splitlines()[0].strip() if done.stdout.strip() else ""
