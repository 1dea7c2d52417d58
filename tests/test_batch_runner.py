"""The poll loop's decisions, driven by a scripted backend (the real backends are tested on the testbed)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import b2box as b2luigi
from b2box.batch import ledger
from b2box.batch.backends.base import JobState, JobStatus, Submitted
from b2box.batch.jobs import PreparedJob
from b2box.batch.runner import BatchRunner
from b2box.engine.graph import State


class ScriptedBackend:
    """Runs each wrapper at once with bash; jobs listed in ``hold_first`` are held on their first try."""

    name = "local"  # stands in for the local backend: an in-memory batch system

    def __init__(self, hold_first: Sequence[str] = (), running: Sequence[str] = ()) -> None:
        self.hold_first = set(hold_first)
        self.still_running = set(running)
        self.submitted: list[list[str]] = []
        self.polls = 0
        self.cancelled: list[str] = []
        self._states: dict[str, JobStatus] = {}
        self._count = 0

    def submit(self, jobs: Sequence[PreparedJob]) -> Iterator[Submitted]:
        self.submitted.append([job.task_id for job in jobs])
        ids = {}
        for job in jobs:
            self._count += 1
            job_id = f"s{self._count}"
            ids[job.task_id] = job_id
            family = job.task.task_family
            if family in self.hold_first:
                self.hold_first.discard(family)
                self._states[job_id] = JobStatus(JobState.HELD, reason="held: Disk quota exceeded")
                continue
            subprocess.run(["/bin/bash", job.wrapper], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._states[job_id] = JobStatus(JobState.FINISHED)
        yield Submitted(job_ids=ids)

    def poll(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.polls += 1
        result = {}
        for job_id in job_ids:
            if job_id in self.still_running:
                result[job_id] = JobStatus(JobState.RUNNING)
                self.still_running.discard(job_id)  # it finishes after one more poll
                continue
            result[job_id] = self._states.get(job_id, JobStatus(JobState.FINISHED))
        return result

    def wait(self, timeout: float) -> None:
        pass

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.cancelled += list(job_ids)

    def close(self, leave_running: bool = False) -> None:
        pass


class Leaf(b2luigi.Task):
    batch_system = "local"
    retries = 1
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("leaf.txt")

    def run(self):
        with open(self.get_output_file_name("leaf.txt"), "w") as handle:
            handle.write(str(self.index))


class Top(b2luigi.Task):
    batch_system = "local"

    def requires(self):
        return [Leaf(index=i) for i in range(4)]

    def output(self):
        yield self.add_to_output("top.txt")

    def run(self):
        with open(self.get_output_file_name("top.txt"), "w") as handle:
            handle.write("top")


class All(b2luigi.WrapperTask):
    def requires(self):
        return Top()


def test_one_submit_per_wave_and_wrapper_tasks_never_become_jobs(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    result = BatchRunner(workers=10, backends={"local": backend}).run([All()])
    assert result.success
    assert [len(wave) for wave in backend.submitted] == [4, 1], "leaves in one wave, then Top"
    assert all("All" not in task_id for wave in backend.submitted for task_id in wave)
    assert backend.polls == 2


def test_held_job_is_removed_and_retried(tmp_path: Path) -> None:
    backend = ScriptedBackend(hold_first=["Leaf"])
    notes: list[str] = []

    class Notes:
        def begin(self, graph): ...
        def changed(self, node): ...
        def end(self, graph): ...
        def note(self, text):
            notes.append(text)

    result = BatchRunner(workers=10, backends={"local": backend}, reporter=Notes()).run([Top()])
    assert result.success
    assert backend.cancelled == ["s1"], "the held job was removed"
    assert any("Disk quota exceeded" in note and "retry 1 of 1" in note for note in notes)


def test_retries_exhausted_fail_with_the_reason(tmp_path: Path) -> None:
    class Flaky(Leaf):
        retries = 0

    backend = ScriptedBackend(hold_first=["Flaky"])
    result = BatchRunner(workers=10, backends={"local": backend}).run([Flaky(index=9)])
    assert not result.success
    assert "Disk quota exceeded" in (result.failed[0].error or "")


class NoRetry(Leaf):
    retries = 0


def test_restart_reattaches_instead_of_submitting_again(tmp_path: Path) -> None:
    task = NoRetry(index=5)
    ledger.record(task, "local", "old-7")
    backend = ScriptedBackend(running=["old-7"])
    result = BatchRunner(workers=10, backends={"local": backend}).run([task])
    assert backend.submitted == [], "no duplicate submission"
    node = result.graph.nodes[task.task_id]
    assert node.state is State.FAILED, "the adopted job finished without an exit record"
    assert "ended without writing" in (node.error or "")
    assert ledger.lookup(task) is None


class Packed(Leaf):
    tasks_per_job = 3


class PackedAll(b2luigi.WrapperTask):
    def requires(self):
        return [Packed(index=i) for i in range(7)]


def test_tasks_per_job_packs_several_tasks_into_one_job(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    result = BatchRunner(workers=100, backends={"local": backend}).run([PackedAll()])
    assert result.success
    assert [len(wave) for wave in backend.submitted] == [3], "7 tasks in 3 jobs (3 + 3 + 1)"
    job_ids = {
        ledger_id
        for ledger_id in (json.loads(p.read_text())["job_id"] for p in (tmp_path / "logs").rglob("provenance.json"))
    }
    assert len(job_ids) == 3
    for index in range(7):
        assert (tmp_path / f"results/index={index}/leaf.txt").read_text() == str(index)
