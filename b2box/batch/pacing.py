"""Passes of the poll loop that stay short at 100,000 jobs, and what they show together.

A pass has a time (:class:`~b2box.batch.room.Room`); what it leaves is done in the next, which follows at once.
Jobs that have ended wait in a :class:`Backlog` and are judged a share per poll: judging a job reads its exit
record and looks at its task's outputs, tens of microseconds, which at 100,000 jobs ending together is seconds in
one poll while nothing else (submitting, telling the user, Ctrl-C) happens. The backlog hands out jobs until the
poll's CPU budget is spent; the rest are judged in the next pass, which then does not wait for the poll interval.
A job waiting there is not queried again. When few jobs are left, the wait between two polls ends as soon as one
of them writes its exit record (:func:`until_one_ends`), so the run is done a moment after its last job, not up to
a poll interval later.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from b2box.batch.backends.base import JobStatus
from b2box.engine.reporting import held

JUDGING_BUDGET_S = 0.5  # the CPU seconds one poll spends judging ended jobs (at least one job is judged)
WATCHED_JOBS = 200  # with no more jobs than this left, the wait between polls ends when one writes its exit record
ENDING_WAIT_S = 0.25  # the wait while a job that wrote its exit record is still shown running
HOLD_SECONDS = 10.0  # the longest the submission outcomes of several passes wait to be shown together


class Backlog:
    """Ended jobs in the order they were found, each with the status that ended it."""

    def __init__(self, budget_s: float = JUDGING_BUDGET_S) -> None:
        self.budget_s = budget_s
        self._ended: dict[str, JobStatus] = {}

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._ended

    def __len__(self) -> int:
        return len(self._ended)

    def add(self, job_id: str, status: JobStatus) -> None:
        self._ended.setdefault(job_id, status)

    def share(self) -> Iterator[tuple[str, JobStatus]]:
        """The jobs to judge now, oldest first, until the budget of CPU time is spent."""
        started = time.process_time()
        while self._ended:
            job_id = next(iter(self._ended))
            yield job_id, self._ended.pop(job_id)
            if time.process_time() - started >= self.budget_s:
                return


class SubmissionOutcomes:
    """Outcomes of a pass's submissions shown together (failures of one cause as one line); a pass cut short for
    time keeps them for the next (up to :data:`HOLD_SECONDS`), so a wave that goes out in several passes is still
    one line per cause. Use: ``with outcomes: ...pass...``, then :meth:`pass_ended`."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self._since: float | None = None

    def __enter__(self) -> SubmissionOutcomes:
        if self._since is None:
            held(self.reporter, True)
            self._since = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is not None:
            self.pass_ended(cut_short=False)

    def pass_ended(self, cut_short: bool) -> None:
        """The pass is over; unless it stopped for time (and not for long), its outcomes are shown now."""
        if self._since is not None and (not cut_short or time.monotonic() - self._since > HOLD_SECONDS):
            held(self.reporter, False)
            self._since = None


def until_one_ends(exit_records: list[str], seconds: float, step: float = 0.1) -> None:
    """Sleep up to ``seconds``; end early when one of ``exit_records`` that did not exist at the start appears. A
    record there already belongs to a job the batch system still showed running at the last poll (it ends a moment
    after writing it): then the wait is at most :data:`ENDING_WAIT_S`."""
    missing = [path for path in exit_records if not os.path.exists(path)]
    if len(missing) < len(exit_records):
        seconds = min(seconds, ENDING_WAIT_S)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(step, left))
        if any(os.path.exists(path) for path in missing):
            return
