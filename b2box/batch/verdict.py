"""Judging a job that has left the batch system: by its own exit record and by the task's outputs, never by hope.

Exit code 0 without every output is a failure, and a job that vanished without a record is a failure, never a
success; the one exception is a job whose every output was committed after it was prepared (outputs are committed
only when ``run()`` succeeds), which succeeded even if it could not write its record (a full log disk).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import luigi.task

from b2box.batch import transfer
from b2box.batch.backends.base import JobState, JobStatus, explained
from b2box.batch.jobs import PreparedJob
from b2box.batch.memory import killed_for_memory
from b2box.engine.execute import missing_outputs
from b2box.job.files import ExitRecord
from b2box.jsonio import read_json, write_json

_TAIL_LINES = 5
_MEMORY_TAIL_LINES = 20  # where a batch system's line about a memory kill is looked for
# what a batch system writes into a job's log when it killed the job for memory (Slurm's slurmstepd, LSF)
_MEMORY_LINE = re.compile(r"oom[_-]kill event|OOM Killed|Exceeded job memory limit|TERM_MEMLIMIT")


@dataclass(frozen=True)
class Problem:
    """Why a job failed; for a job killed for memory, what it was seen to use (bytes, None: not measured)."""

    text: str
    killed_for_memory: bool = False
    memory_used: int | None = None


def judge(job: PreparedJob, status: JobStatus) -> Problem | None:
    """None when the job succeeded; otherwise why it failed."""
    transfer.restore(job.task, job.log_dir)  # a job without a shared filesystem brought its results back
    record = ExitRecord.read(job.exit_file)
    if record is None:
        if status.exit_code in (0, None) and _outputs_made_by(job):
            return None  # its record was lost (a full log disk), but only a successful run commits outputs
        memory = memory_kill(job, status)
        if memory is not None:
            return memory
        code = f" ({_killed_by(status.exit_code)})" if status.exit_code is not None else ""
        return Problem(
            f"the job ended without writing {job.exit_file}{code}: it was killed or never started. "
            f"{status.reason}".strip()
        )
    if record.exit_code != 0:
        last = _tail(job.stderr, _MEMORY_TAIL_LINES)  # (the log is read once)
        tail = "\n".join(last.splitlines()[-_TAIL_LINES:])
        logs = f"; logs: {job.stdout}, {job.stderr}" + (f":\n{tail}" if tail else "")
        memory = memory_kill(job, status, last)
        return replace(memory, text=memory.text + logs) if memory else Problem(_ending(record.exit_code) + logs)
    missing = missing_outputs(luigi.task.flatten(job.task.output()))
    if missing:
        return Problem("the job exited 0 but did not create " + ", ".join(missing))
    if status.memory_used:
        _keep_accounting(job, status.memory_used)
    return None


def _keep_accounting(job: PreparedJob, used: int) -> None:
    """The batch system's own figure of the job's memory (in an answer b2box read anyway, e.g. LSF's MAX_MEM),
    beside the job's: in its provenance, as ``accounting``."""
    record = read_json(job.provenance_file)
    if isinstance(record, dict):
        with contextlib.suppress(OSError):
            write_json(job.provenance_file, {**record, "accounting": {"memory_used_bytes": used}})


def memory_kill(job: PreparedJob, status: JobStatus, log_tail: str | None = None) -> Problem | None:
    """The job was killed (or held, as HTCondor does) for memory: its watcher saw the kernel's OOM killer, the batch
    system says so, or its log (``log_tail``: the end of its stderr, when read already) does."""
    provenance = read_json(job.provenance_file)
    said = isinstance(provenance, dict) and provenance.get("exit_cause") == "memory"
    if not (status.memory_kill or said):
        log_tail = log_tail if log_tail is not None else _tail(job.stderr, _MEMORY_TAIL_LINES)
        if not _MEMORY_LINE.search(log_tail):
            return None
    usage = provenance.get("usage", {}) if isinstance(provenance, dict) else {}
    used = status.memory_used or (usage.get("peak_rss_bytes") if isinstance(usage, dict) else None)
    text = killed_for_memory(used, job.request_memory)
    where = f" ({status.reason})" if status.reason else ""
    return Problem(f"{text}{where}", killed_for_memory=True, memory_used=used)


def with_explanations(
    backend: Any, statuses: dict[str, JobStatus], exit_files: Mapping[str, list[str]]
) -> dict[str, JobStatus]:
    """``statuses``, where jobs left without their exit record (removed, cancelled, killed), with what the batch
    system says of them as their reason: asked once for all such jobs."""
    silent = [
        job_id
        for job_id, status in statuses.items()
        if status.state is JobState.FINISHED and not status.reason and job_id in exit_files
        and not all(os.path.exists(path) for path in exit_files[job_id])
    ]  # fmt: skip
    said = explained(backend, silent)
    return {job_id: replace(status, reason=said[job_id]) if job_id in said else status
            for job_id, status in statuses.items()}  # fmt: skip


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return ""


def _killed_by(exit_code: int) -> str:
    """'exit code 3', or, for a process killed by a signal (a negative code), 'killed by signal SIGKILL'."""
    if exit_code < 0:
        try:
            return f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"


def _ending(exit_code: Any) -> str:
    """'the job exited with code 3', or for a shell's 128+N: 'the job was killed by signal SIGSEGV (exit code 139)'."""
    if isinstance(exit_code, int) and 128 < exit_code < 128 + 65:
        try:
            name = signal.Signals(exit_code - 128).name
        except ValueError:
            name = f"signal {exit_code - 128}"
        return f"the job was killed by signal {name} (exit code {exit_code})"
    return f"the job exited with code {exit_code}"


def _outputs_made_by(job: PreparedJob) -> bool:
    """Whether every output exists and was put in place after the job was prepared."""
    targets = luigi.task.flatten(job.task.output())
    paths = [target.path for target in targets if hasattr(target, "path")]
    if not paths or len(paths) != len(targets):
        return False
    try:
        return all(os.stat(path).st_mtime >= job.prepared_at for path in paths)
    except OSError:
        return False
