"""A wave of jobs submitted together, addressed by index.

Batch systems address the jobs of one submission by a number (HTCondor's
``$(ProcId)``, Slurm's ``%a`` / ``$SLURM_ARRAY_TASK_ID``). A wave folder maps
each number to its job through symbolic links, ``<wave>/<n>/job.sh`` (the
wrapper) and ``<wave>/<n>/log`` (the log folder), so submit descriptions hold
only the wave's own path plus a number: task parameters and user paths with
spaces or quotes never reach a submit file's syntax. The folder's ``wave.json`` says which job each
number is; it is written before the submission, so a run killed before it heard the answer can still find
the wave in the queue by its tag (:meth:`~b2box.batch.backends.arrays.ArrayBackend.recover`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from b2box.batch.jobs import PreparedJob
from b2box.batch.workflow_folder import state_dir
from b2box.job.files import read_json, write_json

MANIFEST = "wave.json"


@dataclass(frozen=True)
class Wave:
    """A folder of numbered links to the jobs of one submission."""

    folder: str
    jobs: tuple[PreparedJob, ...]

    @classmethod
    def create(cls, backend: str, jobs: Sequence[PreparedJob], first: int = 0) -> Wave:
        """Link the jobs as ``<wave>/<first>``, ``<wave>/<first + 1>`` ... (LSF numbers array elements from 1)."""
        waves = os.path.join(state_dir(), "waves")
        os.makedirs(waves, exist_ok=True)
        folder = tempfile.mkdtemp(prefix=f"{backend}-", dir=waves)
        for index, job in enumerate(jobs, start=first):
            entry = os.path.join(folder, str(index))
            os.mkdir(entry)
            os.symlink(job.wrapper, os.path.join(entry, "job.sh"))
            os.symlink(job.log_dir, os.path.join(entry, "log"))
        manifest = {"backend": backend, "first": first, "jobs": [job.task_id for job in jobs]}
        write_json(os.path.join(folder, MANIFEST), manifest)
        return cls(folder=folder, jobs=tuple(jobs))

    @staticmethod
    def written(backend: str) -> list[tuple[Wave, dict[int, str]]]:
        """The waves of ``backend`` still on disk, each with its numbers' jobs (by the prepared job's id)."""
        found = []
        waves = os.path.join(state_dir(), "waves")
        for name in sorted(os.listdir(waves)) if os.path.isdir(waves) else []:
            manifest = read_json(os.path.join(waves, name, MANIFEST))
            if manifest is None or manifest.get("backend") != backend:
                continue
            first = int(manifest.get("first", 0))
            numbered = {index: str(job) for index, job in enumerate(manifest.get("jobs", []), start=first)}
            found.append((Wave(folder=os.path.join(waves, name), jobs=()), numbered))
        return found

    @property
    def tag(self) -> str:
        """The wave's name, which its submission carries (a comment, a job attribute) so it can be found again."""
        return os.path.basename(self.folder)

    def path(self, *parts: str) -> str:
        return os.path.join(self.folder, *parts)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class WaveTracker:
    """Removes a wave's folder once every one of its jobs has been seen finished."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Wave, set[str]]] = {}
        self._wave_of: dict[str, str] = {}
        self._adopted: set[str] = set()  # jobs of an earlier run this run follows (their waves are that run's)

    def add(self, wave: Wave, job_ids: Iterable[str]) -> None:
        ids = set(job_ids)
        self._open[wave.folder] = (wave, ids)
        self._wave_of.update(dict.fromkeys(ids, wave.folder))

    def adopt(self, job_ids: Iterable[str]) -> None:
        """Count jobs an earlier run submitted, which this run follows, as open until they are seen finished."""
        self._adopted.update(job_ids)

    @property
    def open_jobs(self) -> int:
        """How many jobs of this run (its own waves' and those it adopted) the batch system still has."""
        return len(self._wave_of) + len(self._adopted)

    def finished(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self._adopted.discard(job_id)
            folder = self._wave_of.pop(job_id, None)
            if folder is None:
                continue
            wave, pending = self._open[folder]
            pending.discard(job_id)
            if not pending:
                wave.remove()
                del self._open[folder]
