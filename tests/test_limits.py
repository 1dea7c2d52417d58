"""A batch system's limits, with an in-memory array backend whose jobs run at submission: arrays split at the
largest size it takes, no more jobs in its queue than it takes, refusals that name a limit taught, per-family
limits, and failures of one cause shown as one line. The real Slurm and HTCondor limits: tests/test_pool_limits.py.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import b2box as b2luigi
from b2box.batch.backends import arrays
from b2box.batch.backends.arrays import ArrayBackend, LimitKind, Limits
from b2box.batch.backends.base import JobState, JobStatus
from b2box.batch.notices import Notices
from b2box.batch.retry import CallFailed, RetryPolicy
from b2box.batch.runner import BatchRunner
from b2box.batch.waves import Wave
from b2box.engine import luigi_lines
from b2box.engine.graph import Node, State, TaskGraph
from b2box.engine.progress import ProgressReporter
from b2box.engine.scheduler import RunResult


class CappedArrays(ArrayBackend):
    """Takes arrays of up to ``array_cap`` jobs and up to ``queue_cap`` jobs in its queue, refusing beyond with
    Slurm's words; says so when asked (``tell``) or leaves it to the refusals."""

    name = "local"

    def __init__(self, array_cap: int, queue_cap: int, tell: bool, refuse_all: str = "") -> None:
        super().__init__()
        self.array_cap, self.queue_cap, self.tell, self.refuse_all = array_cap, queue_cap, tell, refuse_all
        self.calls: list[int] = []  # the size of every submission tried
        self.accepted: list[int] = []
        self.most_queued = 0
        self.ran: list[str] = []

    def find_limits(self) -> Limits:
        if not self.tell:
            return Limits()
        return Limits(array_size=self.array_cap, queued=self.queue_cap, source="told")

    def limit_refused(self, message: str) -> LimitKind:
        return "array" if "array" in message else "queue" if "MaxJobCount" in message else ""

    def submit_array(self, wave: Wave) -> str:
        self.calls.append(len(wave.jobs))
        if self.refuse_all:
            raise CallFailed(self.refuse_all, transient=False)
        if len(wave.jobs) > self.array_cap:
            raise CallFailed("sbatch: error: Batch job submission failed: Invalid job array specification", False)
        if self.waves.open_jobs + len(wave.jobs) > self.queue_cap:
            raise CallFailed("sbatch: error: MaxJobCount reached", transient=False)
        self.most_queued = max(self.most_queued, self.waves.open_jobs + len(wave.jobs))
        self.accepted.append(len(wave.jobs))
        for job in wave.jobs:
            subprocess.run(["/bin/bash", job.wrapper], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.ran.append(job.task_id)
        return str(len(self.calls))

    def find_arrays(self, waves: Sequence[Wave]) -> dict[str, str]:
        return {}

    def job_id(self, array_id: str, index: int) -> str:
        return f"{array_id}_{index}"

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {}  # every job has left the queue: judged by its exit record

    def remove(self, job_ids: Sequence[str]) -> None:
        pass


class Part(b2luigi.Task):
    batch_system = "local"
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("part.txt")

    def run(self):
        with open(self.get_output_file_name("part.txt"), "w") as handle:
            handle.write(str(self.index))


class Gentle(Part):
    """Reads a shared file system hard: at most two of its jobs at once."""

    max_jobs_in_flight = 2

    def output(self):
        yield self.add_to_output("gentle.txt")

    def run(self):
        with open(self.get_output_file_name("gentle.txt"), "w") as handle:
            handle.write(str(self.index))


def _run(tmp_path: Path, backend: CappedArrays, tasks: list[b2luigi.Task], reporter: Any = None) -> RunResult:
    b2luigi.set_setting("result_dir", str(tmp_path / "results"))
    b2luigi.set_setting("task_file_dir", str(tmp_path / "task_files"))
    b2luigi.set_setting("log_dir", str(tmp_path / "logs"))
    runner = BatchRunner(100, reporter, 0, backends={"local": backend}, retry_policy=RetryPolicy(limit=1))
    return runner.run(tasks)


def test_known_limits_split_arrays_and_keep_the_queue_under_its_limit(tmp_path: Path) -> None:
    backend = CappedArrays(array_cap=3, queue_cap=5, tell=True)
    _run(tmp_path, backend, [Part(index=i) for i in range(12)])
    assert sorted(backend.ran) == sorted(set(backend.ran)) and len(backend.ran) == 12, "every task ran once"
    assert all(size <= 3 for size in backend.calls) and backend.most_queued <= 5
    assert backend.calls == backend.accepted, "nothing was refused: the limits were known"
    assert backend.calls == [3, 2, 3, 2, 2], "5 in the queue at a time, in arrays of at most 3"


def test_refusals_that_name_a_limit_teach_the_run(tmp_path: Path) -> None:
    backend = CappedArrays(array_cap=4, queue_cap=6, tell=False)
    notes: list[str] = []
    reporter = ProgressReporter(stream=io.StringIO(), live=False)
    reporter.note = notes.append  # type: ignore[method-assign]
    backend.retry.note = notes.append  # (the runner hands its reporter to the backends it makes itself)
    result = _run(tmp_path, backend, [Part(index=i) for i in range(20)], reporter)
    assert result.counts[State.DONE] == 20 and len(backend.ran) == 20 == len(set(backend.ran))
    assert backend.calls[:3] == [20, 10, 5], "an array refused for its size is halved until it goes"
    assert max(backend.accepted) <= 4 and backend.most_queued <= 6
    assert any("refused an array of 20 jobs" in note for note in notes)
    assert any("holds 6 of this run's jobs" in note and "waiting" in note for note in notes), notes


class Crowded(CappedArrays):
    """Another user's jobs fill the queue until the first refusal, then leave: it takes 6, then 100."""

    def submit_array(self, wave: Wave) -> str:
        try:
            return super().submit_array(wave)
        except CallFailed:
            self.queue_cap = 100
            raise


def test_a_queue_limit_learned_from_a_refusal_is_tried_again_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(arrays, "LEARNED_QUEUE_S", 0.0)  # (120 s in a run)
    backend = Crowded(array_cap=4, queue_cap=6, tell=False)
    backend._limits = Limits(array_size=4)  # arrays of 4 known, the queue's limit not
    result = _run(tmp_path, backend, [Part(index=i) for i in range(30)])
    assert result.counts[State.DONE] == 30 and len(set(backend.ran)) == 30
    assert backend.most_queued > 6, "once the queue had room again, more than the learned 6 went in"


def test_a_refusal_for_a_reason_of_its_own_fails_the_tasks(tmp_path: Path) -> None:
    backend = CappedArrays(array_cap=100, queue_cap=100, tell=True, refuse_all="invalid partition name specified")
    result = _run(tmp_path, backend, [Part(index=i) for i in range(4)])
    assert backend.calls == [4], "one try: nothing to shrink"
    failed = [node for node in result.graph.nodes.values() if node.state is State.FAILED]
    assert len(failed) == 4 and "invalid partition" in (failed[0].error or "")


def test_max_jobs_in_flight_limits_a_family(tmp_path: Path) -> None:
    backend = CappedArrays(array_cap=100, queue_cap=100, tell=True)
    _run(tmp_path, backend, [Gentle(index=i) for i in range(5)] + [Part(index=i) for i in range(3)])
    assert sorted(backend.ran) == sorted(set(backend.ran)) and len(backend.ran) == 8
    assert backend.calls[0] == 5, "two of Gentle and the three of Part in the first pass"
    assert all(size <= 2 for size in backend.calls[1:])


def _reporter(verbose: bool = False) -> tuple[ProgressReporter, io.StringIO]:
    stream = io.StringIO()
    reporter = ProgressReporter(stream=stream, live=False, verbose=verbose)
    reporter.begin(TaskGraph())
    return reporter, stream


def _failed_node(index: int, log: str) -> Node:
    node = Node(task=Part(index=index), state=State.FAILED)
    node.error = f"{index}_{index}: sbatch refused the job: Batch job submission failed: Invalid partition name"
    node.log_path = log
    return node


def test_failures_of_one_cause_are_one_line(tmp_path: Path) -> None:
    reporter, stream = _reporter()
    reporter.hold()
    for index in range(1500):
        reporter.changed(_failed_node(index, f"/logs/index={index}/stderr"))
    reporter.release()
    lines = [line for line in stream.getvalue().splitlines() if "FAILED" in line]
    assert lines == [
        "b2box: FAILED 1,500 tasks of Part: sbatch refused the job: Batch job submission failed: Invalid partition "
        "name (first log: /logs/index=0/stderr; --verbose lists each)"
    ]


def test_verbose_lists_each_failure_and_the_summary_counts_causes() -> None:
    reporter, stream = _reporter(verbose=True)
    reporter.hold()
    for index in range(30):
        reporter.changed(_failed_node(index, f"/logs/{index}"))
    reporter.release()
    assert sum("b2box: FAILED Part(index=" in line for line in stream.getvalue().splitlines()) == 30
    assert reporter.failures.by_cause() == [
        "b2box:        30 of Part: sbatch refused the job: Batch job submission failed: Invalid partition name"
    ]


def test_outside_a_batch_pass_the_first_of_a_cause_shows_at_once_and_the_rest_together() -> None:
    reporter, stream = _reporter()
    for index in range(3):
        reporter.changed(_failed_node(index, f"/logs/{index}"))
    shown = [line for line in stream.getvalue().splitlines() if "FAILED" in line]
    assert len(shown) == 1 and "Part(index=0)" in shown[0]
    reporter._show_waiting_failures()
    assert "FAILED 2 more tasks of Part" in stream.getvalue()


def test_at_the_end_more_of_a_shown_cause_are_counted_in_the_summary_not_shown_again() -> None:
    """A wave refused in two passes (1,001 and 499 jobs) is one FAILED line and one count by cause."""
    reporter, stream = _reporter()
    reporter.hold()
    for index in range(1001):
        reporter.changed(_failed_node(index, f"/logs/{index}"))
    reporter.release()
    for index in range(1001, 1500):
        reporter.changed(_failed_node(index, f"/logs/{index}"))
    reporter.end(TaskGraph())
    failed = [line for line in stream.getvalue().splitlines() if "FAILED" in line]
    assert failed == [failed[0]] and failed[0].startswith("b2box: FAILED 1,001 tasks of Part"), failed
    assert "1,500 of Part" in stream.getvalue()


def test_different_exit_codes_are_different_causes() -> None:
    reporter, _ = _reporter()
    for index, code in enumerate((1, 1, 137)):
        node = Node(task=Part(index=index), state=State.FAILED)
        node.error = f"7_{index}: the job exited with code {code}; logs: /logs/index={index}/stdout"
        reporter.changed(node)
    assert len(reporter.failures.causes) == 2
    assert json.dumps(reporter.failures.by_cause()).count(" of Part") == 2


def test_holds_and_retries_of_one_reason_are_one_line() -> None:
    told: list[str] = []
    notices = Notices(told.append)
    for index in range(40):
        job = f"77_{index}"
        held = JobStatus(JobState.QUEUED, reason=f"held by its user: release it with scontrol release {job}, or cancel")
        notices.job(job, [f"Item_{index}"], held)
        notices.retry("Item", f"Item_{index}", f"{job}: held: disk quota exceeded", 1, 2)
    notices.job("78_0", ["Other_0"], JobStatus(JobState.RUNNING, reason="suspended"))
    notices.tell()
    assert told == [
        "b2box: 40 jobs (77_0 … 77_39): held by its user: release it with scontrol release <id>, or cancel",
        "b2box: job 78_0 (Other_0): suspended",
        "b2box: 40 tasks of Item: held: disk quota exceeded -- retry 1 of 2",
    ]
    notices.job("78_0", ["Other_0"], JobStatus(JobState.RUNNING, reason="suspended"))
    notices.tell()
    assert len(told) == 3, "a reason is told once, until it changes"


def test_b2luigi_failure_blocks_stop_at_a_hundred_and_count_the_rest() -> None:
    graph = TaskGraph()
    for index in range(150):
        node = _failed_node(index, f"/logs/{index}")
        graph.nodes[node.task_id] = node
    assert luigi_lines.end_of_run(graph) == "This progress looks :( because there were failed tasks\n"
    printed = luigi_lines.end_of_run(graph, failure_blocks=True)
    assert printed.count("Failed task Part(") == 100
    assert "... and 50 more failed tasks (b2box's summary counts them by cause)" in printed
    assert printed.rstrip().endswith("This progress looks :( because there were failed tasks")
