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

A job LSF killed for its memory (``-M``, from ``request_memory``) ends in EXIT with EXIT_REASON ``TERM_MEMLIMIT:
job killed after reaching LSF memory usage limit`` (its EXIT_CODE is whatever the job died with: 130 for the SIGINT
LSF sends first, 137 or 143 for the later signals or a cgroup); it is named a kill for memory, with the MAX_MEM the
same ``bjobs`` reports (``310 Mbytes``, ``5.2 Gbytes``: LSF's binary units), so ``memory_growth`` can send it again
with more.

``bsub`` exits 255 for every error; one that says LSF was not reached ("Cannot connect to LSF. Please wait")
is retried, one that ends in ``Job not submitted.`` for a reason of its own (no such queue, a bad ``-n``) fails
the tasks with LSF's message. ``bsub`` can also exit 0 with an empty answer, with or without having submitted:
before it is tried again, the wave is looked up by its job description (``-Jd``), so it never goes out twice.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from b2box.batch.backends.arrays import ArrayBackend, LimitKind
from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.jobs import PreparedJob
from b2box.batch.memory import with_request
from b2box.batch.retry import CallFailed
from b2box.batch.waves import Wave
from b2box.settings.declared import SettingGroup
from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from b2box.settings.types import PositiveInt


class LSFSettings(SettingGroup):
    """LSF's own settings."""

    queue: str | None = None
    """LSF queue (``bsub -q``)."""
    job_slots: PositiveInt | None = None
    """LSF job slots (``bsub -n``), only when set."""
    lsf_settings: dict[str, Any] = {}
    """``bsub`` options, e.g. ``{"-R": "rusage[mem=4000]", "-W": "2:00"}``."""
    lsf_array_size: PositiveInt = 1000
    """Largest LSF job array b2box submits (the site's ``MAX_JOB_ARRAY_SIZE``); larger waves are split."""


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
FIELDS = "jobid jobindex stat exit_code exit_reason pend_reason max_mem"
MEMLIMIT = "TERM_MEMLIMIT"  # EXIT_REASON of a job LSF killed for its memory limit
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGTPE])(?:bytes|B)?", re.IGNORECASE)
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40, "P": 2**50, "E": 2**60}
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


def parse_memory(text: Any) -> int | None:
    """bjobs' MAX_MEM (``12 Kbytes``, ``310 Mbytes``, ``5.2 Gbytes``, also ``522 MBytes``, ``1.5G``) in bytes, with
    LSF's binary units; None for ``-``, an empty value or anything else."""
    found = _MEMORY.fullmatch(str(text or "").strip())
    return int(float(found.group(1)) * _UNITS[found.group(2).upper()]) if found else None


def status_of(record: Mapping[str, Any]) -> JobStatus:
    """One ``bjobs -json`` record; an unknown STAT is UNKNOWN with a reason, never a crash; EXIT with TERM_MEMLIMIT
    is a kill for memory."""
    stat = str(record.get("STAT", "")).strip()
    state = STATES.get(stat, JobState.UNKNOWN)
    identity = job_id(str(record.get("JOBID", "")), int(record.get("JOBINDEX") or 0))
    note = _NOTES.get(stat, "").format(id=identity)
    if state is JobState.UNKNOWN and stat not in STATES:
        note = f"unknown LSF state {stat!r}; waiting"
    if stat == "EXIT" and record.get("EXIT_REASON"):
        note = str(record["EXIT_REASON"])
    code = str(record.get("EXIT_CODE", "")).strip()
    memory = stat == "EXIT" and str(record.get("EXIT_REASON", "")).strip().startswith(MEMLIMIT)
    return JobStatus(state, reason=note, exit_code=int(code) if code.isdigit() else None, memory_kill=memory,
                     memory_used=parse_memory(record.get("MAX_MEM")))  # fmt: skip


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


def _option_value(value: Any) -> str:
    """An option's value on its ``#BSUB`` line: bare when it needs no quotes (``-M 204800KB``, ``-W 2:00``, as IBM's
    examples write them), quoted otherwise."""
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z0-9_.:+-]+", text) else _quoted(text)


def refusal(lsf: LSFSettings, job_name: str) -> str:
    """Why a task's LSF settings cannot become ``#BSUB`` lines (a line break would add lines of its own), or empty."""
    values = {
        "job_name": job_name,
        "queue": lsf.queue or "",
        **{f"lsf_settings {key!r}": f"{key}{value}" for key, value in lsf.lsf_settings.items()},
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
    return f"b2box:{wave.tag}"


def array_script(wave: Wave, count: int, lsf: LSFSettings, job_name: str) -> str:
    """The array's script: its options as ``#BSUB`` lines, then element ``$LSB_JOBINDEX`` runs its wrapper; the
    memory request is LSF's limit ``-M`` in kilobytes with their unit (as LSF_UNIT_FOR_LIMITS cannot change it)."""
    options: dict[str, Any] = dict(lsf.lsf_settings)
    if wave.jobs:
        first = wave.jobs[0]
        limit = ("-M", f"{-(-(first.request_memory or 0) // 1024)}KB")
        options = with_request(first.task, first.request_memory, options, ("-m",), limit, "lsf_settings")
    lines = [
        "#!/bin/bash",
        f"#BSUB -J {_quoted(array_name(job_name) + f'[1-{count}]')}",
        f"#BSUB -Jd {_quoted(wave_description(wave))}",
        f"#BSUB -oo {_quoted(wave.path('%I', 'log', 'stdout'))}",
        f"#BSUB -eo {_quoted(wave.path('%I', 'log', 'stderr'))}",
    ]
    if lsf.queue:
        lines.append(f"#BSUB -q {_quoted(lsf.queue)}")
    if lsf.job_slots is not None:
        lines.append(f"#BSUB -n {int(lsf.job_slots)}")
    for key, value in options.items():
        lines.append(f"#BSUB {key}" if value is True or value == "" else f"#BSUB {key} {_option_value(value)}")
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


class LSFBackend(ArrayBackend):
    """Submits job arrays with ``bsub`` and follows them with ``bjobs``, every call under the retry policy."""

    name = "lsf"
    required_command = "bsub"
    first_index = 1
    refused_by = "bsub refused the job"

    @classmethod
    def version_here(cls) -> str:
        """The LSF version (``lsid``'s first line)."""
        try:
            done = subprocess.run(["lsid"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            return "lsid did not answer"
        lines = done.stdout.splitlines()
        return f"LSF: {lines[0].strip()}" if lines and lines[0].strip() else "lsid did not answer"

    def refusal(self, job: PreparedJob) -> str:
        settings = settings_of(job.task)
        return refusal(settings.group(LSFSettings), settings.batch.job_name)

    def group_key(self, job: PreparedJob) -> Hashable:
        settings = settings_of(job.task)
        lsf = settings.group(LSFSettings)
        key = [settings.batch.job_name, lsf.queue or "", lsf.job_slots, lsf.lsf_settings, lsf.lsf_array_size]
        return json.dumps(key, default=str)

    def array_limit(self, job: PreparedJob) -> int | None:
        return max(1, settings_of(job.task).group(LSFSettings).lsf_array_size)

    def limit_refused(self, message: str) -> LimitKind:
        """An array larger than the site's MAX_JOB_ARRAY_SIZE (``lsf_array_size`` set too high), or a job limit."""
        text = message.lower()
        if "array" in text and any(word in text for word in ("exceed", "too large", "maximum")):
            return "array"
        if "job limit" in text or "max_job" in text or "too many jobs" in text:
            return "queue"
        return ""

    def submit_array(self, wave: Wave) -> str:
        settings = settings_of(wave.jobs[0].task)
        script = array_script(wave, len(wave.jobs), settings.group(LSFSettings), settings.batch.job_name)
        with open(wave.path("array.sh"), "w", encoding="utf-8") as handle:
            handle.write(script)
        done = self.retry.run_once(["bsub"], input_text=script)
        array_id = parse_bsub(done.stdout)
        if array_id is None:  # seen on production farms: exit 0, nothing said
            raise CallFailed(f"bsub answered without a job id ({done.stdout.strip()!r})", transient=True)
        return array_id

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        """One ``bjobs -a`` of the user's jobs with their job descriptions (the waves' tags)."""
        done = self.retry.run_once(
            ["bjobs", "-a", "-json", "-o", "jobid job_description"], always_transient=True, accept=lambda d: True
        )
        try:
            records = json.loads(done.stdout).get("RECORDS", [])
        except ValueError as error:
            raise CallFailed(f"bjobs printed no valid JSON ({error})", transient=True) from None
        tags = {wave_description(wave): wave.tag for wave in waves}
        found = {}
        for record in records:
            description = str(record.get("JOB_DESCRIPTION", ""))
            if description in tags:
                found[tags[description]] = str(record.get("JOBID", ""))
        return found

    def job_id(self, array_id: str, index: int) -> str:
        return job_id(array_id, index)

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        arrays = sorted({identity.split("[")[0] for identity in job_ids}, key=int)
        return self.retry.call("status query", lambda: self._bjobs(arrays))

    def _bjobs(self, arrays: list[str]) -> dict[str, JobStatus]:
        """One bjobs for every array; an answer that is not complete JSON (bjobs exited 255 half-way) is retried."""
        done = self.retry.run_once(
            ["bjobs", "-json", "-a", "-o", FIELDS, *arrays], always_transient=True, accept=lambda d: True
        )
        try:
            return parse_bjobs(done.stdout)
        except (ValueError, AttributeError) as error:
            message = done.stderr.strip() or str(error)
            raise CallFailed(f"bjobs exited with {done.returncode}: {message[-500:]}", transient=True) from None

    def remove(self, job_ids: Sequence[str]) -> None:
        self.retry.run("removal", ["bkill", *job_ids], always_transient=True, accept=_bkill_done)
