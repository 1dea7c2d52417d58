"""Passes of the poll loop stay short at any size: a pass that has had its time stops at a whole number of arrays
and the run polls before it goes on, and jobs that ended together are judged a share per poll. With the in-memory
array backend of tests/test_limits.py (its jobs run at submission) and a clock that the test moves on."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

import b2box as b2luigi
from b2box.batch import ledger, pacing, room
from b2box.batch.backends.base import JobState, JobStatus
from b2box.engine.graph import State
from b2box.engine.progress import ProgressReporter
from tests.test_limits import CappedArrays, Part, _run


class Watched(CappedArrays):
    """Remembers, in order, each submission's size and each status query's ids."""

    def __init__(self, array_cap: int, refuse_all: str = "") -> None:
        super().__init__(array_cap=array_cap, queue_cap=10_000, tell=True, refuse_all=refuse_all)
        self.events: list[tuple[str, int]] = []
        self.queried: list[str] = []

    def submit_array(self, wave):  # type: ignore[no-untyped-def]
        self.events.append(("submit", len(wave.jobs)))
        return super().submit_array(wave)

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.events.append(("query", len(job_ids)))
        self.queried += job_ids
        return {job_id: JobStatus(JobState.FINISHED) for job_id in job_ids}


class Clock:
    """A monotonic clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_pass_out_of_time_stops_at_whole_arrays_and_the_run_polls_before_going_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(room.time, "monotonic", Clock(0.15))  # a pass's second runs out after a few jobs
    backend = Watched(array_cap=4)
    result = _run(tmp_path, backend, [Part(index=i) for i in range(22)])
    assert result.counts[State.DONE] == 22 and sorted(backend.ran) == sorted(set(backend.ran)), "each ran once"
    sizes = [size for kind, size in backend.events if kind == "submit"]
    assert sizes == [4, 4, 4, 4, 4, 2], "every pass submitted whole arrays; only the last is smaller"
    kinds = [kind for kind, _ in backend.events]
    assert kinds.index("query") < len(kinds) - 1 - kinds[::-1].index("submit"), "polled before submitting all"


def test_jobs_that_ended_together_are_judged_a_share_per_poll_and_not_asked_about_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pacing.Backlog.__init__, "__defaults__", (0.0,))  # one job judged per poll
    backend = Watched(array_cap=100)
    result = _run(tmp_path, backend, [Part(index=i) for i in range(6)])
    assert result.counts[State.DONE] == 6
    assert [kind for kind, _ in backend.events] == ["submit", "query"], "one query found all six ended"
    assert len(backend.queried) == 6 and len(set(backend.queried)) == 6, "none was asked about again"
    assert all((tmp_path / "results" / f"index={i}" / "part.txt").exists() for i in range(6))


def test_a_share_of_ended_jobs_is_judged_per_poll(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pacing.Backlog.__init__, "__defaults__", (0.0,))
    shares: list[int] = []
    original = pacing.Backlog.share

    def counted(self: pacing.Backlog):  # type: ignore[no-untyped-def]
        taken = list(original(self))
        shares.append(len(taken))
        yield from taken

    monkeypatch.setattr(pacing.Backlog, "share", counted)
    backend = Watched(array_cap=100)
    result = _run(tmp_path, backend, [Part(index=i) for i in range(5)])
    assert result.counts[State.DONE] == 5
    assert shares == [1, 1, 1, 1, 1], "one job per poll at a budget of 0 s, the rest kept for the next"


def test_the_default_budget_judges_everything_small_at_once(tmp_path: Path) -> None:
    b2luigi.set_setting("result_dir", str(tmp_path / "results"))
    backend = Watched(array_cap=100)
    result = _run(tmp_path, backend, [Part(index=i) for i in range(5)])
    assert result.counts[State.DONE] == 5
    assert [kind for kind, _ in backend.events] == ["submit", "query"]


def test_a_wave_refused_over_several_passes_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(room.time, "monotonic", Clock(0.15))
    stream = io.StringIO()
    backend = Watched(array_cap=4, refuse_all="sbatch: error: invalid partition specified: nope")
    result = _run(tmp_path, backend, [Part(index=i) for i in range(22)], ProgressReporter(stream=stream, live=False))
    assert result.counts[State.FAILED] == 22 and len(backend.calls) == 6, "six arrays, over several passes"
    failed = [line for line in stream.getvalue().splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith("b2box: FAILED 22 tasks of Part: "), failed


def test_the_wait_ends_when_one_of_the_last_jobs_writes_its_exit_record(tmp_path: Path) -> None:
    records = [str(tmp_path / f"exit-{index}.json") for index in range(3)]
    Path(records[0]).write_text("{}")  # a job the batch system still shows running: it does not end the wait
    threading.Timer(0.3, lambda: Path(records[2]).write_text("{}")).start()
    started = time.monotonic()
    pacing.until_one_ends(records, seconds=60)
    assert time.monotonic() - started < 60, "the wait ended at the new record, not at its deadline"


def test_a_record_there_before_the_wait_shortens_it_but_does_not_end_it(tmp_path: Path) -> None:
    """Its job wrote it and is still shown running (it ends a moment later): polled again soon, not at once."""
    record = tmp_path / "exit.json"
    record.write_text("{}")
    started = time.monotonic()
    pacing.until_one_ends([str(record)], seconds=60)
    assert pacing.ENDING_WAIT_S <= time.monotonic() - started < 60


class Adopting(Watched):
    """Three jobs of an earlier run are still running for the first two polls, then leave the queue."""

    def __init__(self) -> None:
        super().__init__(array_cap=100)
        self.queue_cap, self.polls, self.peak, self.since_poll = 5, 0, 0, 0

    def old_running(self) -> int:
        return 3 if self.polls <= 2 else 0

    def submit_array(self, wave):  # type: ignore[no-untyped-def]
        self.since_poll += len(wave.jobs)  # new jobs run at once and are seen finished at the next poll
        self.peak = max(self.peak, self.old_running() + self.since_poll)
        return super().submit_array(wave)

    def query(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.polls, self.since_poll = self.polls + 1, 0
        running = {job_id for job_id in job_ids if job_id.startswith("old") and self.old_running()}
        return {job_id: JobStatus(JobState.RUNNING if job_id in running else JobState.FINISHED) for job_id in job_ids}


def test_jobs_of_an_earlier_run_take_room_in_the_queue(tmp_path: Path) -> None:
    """queued = 5 and 3 jobs of a killed run still running: the new run adds at most 2 until they leave."""
    b2luigi.set_setting("task_file_dir", str(tmp_path / "task_files"))
    for index in range(3):
        ledger.record(Part(index=index), "local", f"old_{index}")
    backend = Adopting()
    result = _run(tmp_path, backend, [Part(index=i) for i in range(10)])
    assert result.counts[State.DONE] == 7, "the seven new tasks ran (the earlier run's jobs left no records)"
    assert backend.peak <= 5, f"{backend.peak} jobs in the queue at once, beyond the 5 it takes"
