"""A toy batch system, added to b2box as docs/architecture.md says: this one file plus one registry line.

Its "cluster" is this machine: a submission starts every element of the array as a process of its own session and
writes a record of the array (its tag, its elements' pids, the toy's own setting) into the spool folder
(``TOY_SPOOL``), where a lost answer is found again. Arrays hold at most ``TOY_ARRAY_LIMIT`` elements, so a wave
is split as a real cluster's limit splits it. Everything else (waves, grouping, the retry-safe submit, one query
per poll, missing jobs judged by their exit records) is b2box's shared array machinery.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
from collections.abc import Hashable, Sequence
from pathlib import Path

from b2box.batch.backends.arrays import ArrayBackend
from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.jobs import PreparedJob
from b2box.batch.retry import BatchCalls
from b2box.batch.waves import Wave
from b2box.settings.declared import SettingGroup
from b2box.settings.resolved import settings_of


class ToySettings(SettingGroup):
    """The toy's own settings."""

    toy_priority: int = 0
    """How urgent the toy's jobs are (it only writes it into its array records)."""


class ToyBackend(ArrayBackend):
    """Runs each array element as a local process and follows it (see the module docstring)."""

    name = "toy"
    refused_by = "the toy refused the job"

    def __init__(self, calls: BatchCalls | None = None) -> None:
        super().__init__(calls)
        self.spool = Path(os.environ["TOY_SPOOL"])
        self.spool.mkdir(parents=True, exist_ok=True)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.numbers = itertools.count(len(list(self.spool.glob("*.json"))) + 1)

    def group_key(self, job: PreparedJob) -> Hashable:
        settings = settings_of(job.task)
        return (settings.batch.job_name, settings.group(ToySettings).toy_priority)

    def array_limit(self, job: PreparedJob) -> int | None:
        return int(os.environ.get("TOY_ARRAY_LIMIT", "2"))

    def submit_array(self, wave: Wave) -> str:
        array_id = f"toy{next(self.numbers)}"
        pids = []
        for index in range(len(wave.jobs)):
            job_id = self.job_id(array_id, index)
            with (
                open(wave.path(str(index), "log", "stdout"), "wb") as out,
                open(wave.path(str(index), "log", "stderr"), "wb") as err,
            ):
                process = subprocess.Popen(
                    ["/bin/bash", wave.path(str(index), "job.sh")],
                    stdout=out,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env={**os.environ, "B2BOX_JOB_ID": job_id},
                )
            self.processes[job_id] = process
            pids.append(process.pid)
        priority = settings_of(wave.jobs[0].task).group(ToySettings).toy_priority
        record = {"array": array_id, "tag": wave.tag, "pids": pids, "priority": priority}
        (self.spool / f"{array_id}.json").write_text(json.dumps(record))
        return array_id

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        tags = {wave.tag for wave in waves}
        records = [json.loads(path.read_text()) for path in self.spool.glob("*.json")]
        return {record["tag"]: str(record["array"]) for record in records if record["tag"] in tags}

    def job_id(self, array_id: str, index: int) -> str:
        return f"{array_id}.{index}"

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {
            job_id: JobStatus(JobState.RUNNING)
            for job_id in job_ids
            if job_id in self.processes and self.processes[job_id].poll() is None
        }

    def remove(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            process = self.processes.get(job_id)
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait()
