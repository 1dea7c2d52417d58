"""Progress of a run: a live status line on a terminal, plain lines elsewhere.

On a terminal one line on stderr is redrawn (at most ten times a second)
with the done / running / pending / failed counts; a failed task prints a
line of its own naming the task and its log, and failures of one cause after
the first are one line together (:mod:`b2box.engine.failures`; ``--verbose``
shows each). When stderr is not a terminal (CI logs), only a start line, the
failure lines, a progress line at most every 30 seconds and the summary are
printed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from b2box.engine.failures import FailureGroups, shared_summary, summary_of
from b2box.engine.graph import Node, State, TaskGraph

_REDRAW_SECONDS = 0.1
_PLAIN_SECONDS = 30.0


def _summary(counts: dict[State, int]) -> str:
    done = counts[State.DONE] + counts[State.COMPLETE]
    total = sum(counts.values())
    parts = [
        f"done {done}/{total}",
        f"running {counts[State.RUNNING]}",
        f"pending {counts[State.PENDING]}",
        f"failed {counts[State.FAILED] + counts[State.MISSING]}",
    ]
    if counts[State.BLOCKED]:
        parts.append(f"blocked {counts[State.BLOCKED]}")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class ProgressReporter:
    """Shows how a run advances (see the module docstring)."""

    def __init__(
        self, stream: TextIO | None = None, live: bool | None = None, full_errors: bool = False, verbose: bool = False
    ) -> None:
        self.stream = stream or sys.stderr
        self.full_errors = full_errors  # --test: a failed task's whole traceback, as b2luigi's --test shows it
        self.failures = FailureGroups(verbose=verbose)
        self._holding = 0  # while a batch pass reports its outcomes, failures wait to be shown by cause
        self._repeats_shown = time.monotonic()  # when more failures of causes shown before were last shown
        self.live = self.stream.isatty() if live is None else live
        self._graph: TaskGraph | None = None
        self._counts: dict[State, int] = {}
        self._last_draw = 0.0
        self._line_shown = False
        self._started = time.monotonic()
        self._done_at_start = 0

    def begin(self, graph: TaskGraph) -> None:
        self._graph = graph
        self._started = time.monotonic()
        self._counts = graph.counts()
        self._done_at_start = self._counts[State.COMPLETE]
        complete = self._counts[State.COMPLETE]
        to_run = self._counts[State.PENDING]
        stale = sum(1 for node in graph.nodes.values() if node.stale and node.state is State.PENDING) if to_run else 0
        again = f" ({stale} made again: stale, b2box status --why says why)" if stale else ""
        total = sum(self._counts.values())
        self._print(f"b2box: {total} tasks, {complete} already complete, {to_run} to run{again}")
        self.hold()
        for node in graph.nodes.values() if self._counts[State.FAILED] or self._counts[State.MISSING] else ():
            if node.state in (State.FAILED, State.MISSING):
                self._report_failure(node)
        self.release()
        self._last_draw = time.monotonic()

    def hold(self) -> None:
        """Outcomes come in together (a batch pass): failures wait, to be shown by cause at :meth:`release`."""
        self._holding += 1

    def release(self) -> None:
        self._holding = max(0, self._holding - 1)
        if not self._holding:
            self._show_waiting_failures(repeats=time.monotonic() - self._repeats_shown >= _PLAIN_SECONDS)

    def changed(self, node: Node) -> None:
        if self._graph is None:
            return
        self._counts = self._recount(node)
        if node.state is State.FAILED:
            self._report_failure(node)
        now = time.monotonic()
        interval = _REDRAW_SECONDS if self.live else _PLAIN_SECONDS
        if now - self._last_draw >= interval:
            self._last_draw = now
            if not self._holding:
                self._show_waiting_failures(repeats=now - self._repeats_shown >= _PLAIN_SECONDS)
            self._draw()

    def note(self, text: str) -> None:
        """A line of its own (a retry, a re-attach), printed above the status line."""
        self._print(text)

    def end(self, graph: TaskGraph) -> None:
        self._show_waiting_failures(repeats=False)  # more of a cause shown before: counted in the summary below
        self._clear()
        counts = graph.counts()
        self.stream.write(f"b2box: {_summary(counts)}  in {_duration(time.monotonic() - self._started)}\n")
        causes = self.failures.by_cause()
        if causes:
            self.stream.write("b2box: failed, by cause:\n" + "\n".join(causes) + "\n")
        self.stream.flush()

    # -- helpers ------------------------------------------------------------------------------------

    def _recount(self, node: Node) -> dict[State, int]:
        """O(1): every change is one of these moves, so a run stays linear."""
        counts = dict(self._counts)
        previous = {
            State.RUNNING: State.PENDING,
            State.DONE: State.RUNNING,
            State.FAILED: State.RUNNING,
            State.BLOCKED: State.PENDING,
        }.get(node.state)
        if previous is not None and counts.get(previous, 0) > 0:
            counts[previous] -= 1
            counts[node.state] = counts.get(node.state, 0) + 1
            return counts
        return self._graph.counts() if self._graph else counts

    def _report_failure(self, node: Node) -> None:
        if self.failures.add(node, now=not self._holding):
            self._show_failure(node)

    def _show_failure(self, node: Node) -> None:
        where = f" (log: {node.log_path})" if node.log_path else ""
        summary = summary_of(node)
        self._print(f"b2box: FAILED {node.name} [{node.task_id}]{': ' + summary if summary else ''}{where}")
        if self.full_errors and node.error:
            self._print(node.error.rstrip())

    def _show_waiting_failures(self, repeats: bool = True) -> None:
        """Failures not shown yet, a line per cause; more of a cause already shown only with ``repeats`` (at most
        every 30 seconds; at the end the summary counts them)."""
        if repeats:
            self._repeats_shown = time.monotonic()
        for node, count, earlier in self.failures.flush(repeats):
            if count == 1 and not earlier:
                self._show_failure(node)
                continue
            where = f" (first log: {node.log_path}; --verbose lists each)" if node.log_path else ""
            more = "more " if earlier else ""
            self._print(f"b2box: FAILED {count:,} {more}tasks of {node.family}: {shared_summary(node)}{where}")

    def _print(self, line: str) -> None:
        redraw = self._line_shown
        self._clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        if redraw:
            self._draw()

    def _draw(self) -> None:
        if not self._counts:
            return
        line = "b2box: " + _summary(self._counts) + self._pace()
        if self.live:
            self.stream.write("\r\x1b[K" + line)
            self._line_shown = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _pace(self) -> str:
        """``  3.2 tasks/s, ~41 s left``: how fast the run goes and when it may end, once something finished."""
        elapsed = time.monotonic() - self._started
        finished = self._counts.get(State.DONE, 0)
        if not finished or elapsed <= 0:
            return ""
        rate = finished / elapsed
        left = self._counts.get(State.PENDING, 0) + self._counts.get(State.RUNNING, 0)
        return f"  {rate:.1f} tasks/s, ~{_duration(left / rate)} left"

    def _clear(self) -> None:
        if self.live and self._line_shown:
            self.stream.write("\r\x1b[K")
            self._line_shown = False
