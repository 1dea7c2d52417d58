"""Who is told how a run goes: the progress display, luigid's view of the run, or nobody (nested runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

from b2box.engine.graph import Node, TaskGraph


class Reporter(Protocol):
    """Told about every change of a task's state (the progress display)."""

    def begin(self, graph: TaskGraph) -> None: ...

    def changed(self, node: Node) -> None: ...

    def note(self, text: str) -> None: ...

    def end(self, graph: TaskGraph) -> None: ...


class SilentReporter:
    """Reports nothing (nested runs of dynamic dependencies)."""

    def begin(self, graph: TaskGraph) -> None:
        pass

    def changed(self, node: Node) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def end(self, graph: TaskGraph) -> None:
        pass


class ReporterGroup:
    """Several reporters told the same (the progress display and luigid's view of the run)."""

    def __init__(self, *reporters: Reporter) -> None:
        self.reporters = reporters

    def begin(self, graph: TaskGraph) -> None:
        for reporter in self.reporters:
            reporter.begin(graph)

    def changed(self, node: Node) -> None:
        for reporter in self.reporters:
            reporter.changed(node)

    def note(self, text: str) -> None:
        for reporter in self.reporters:
            reporter.note(text)

    def end(self, graph: TaskGraph) -> None:
        for reporter in self.reporters:
            reporter.end(graph)

    def hold(self) -> None:
        for reporter in self.reporters:
            held(reporter, True)

    def release(self) -> None:
        for reporter in self.reporters:
            held(reporter, False)


def held(reporter: Reporter, holding: bool) -> None:
    """Tell a reporter that outcomes come in together (a batch pass), or no more, where it cares (it may group
    failures by cause in between: :class:`~b2box.engine.progress.ProgressReporter`)."""
    method = getattr(reporter, "hold" if holding else "release", None)
    if callable(method):
        method()


@contextlib.contextmanager
def outcomes_together(reporter: Reporter) -> Iterator[None]:
    """A pass whose outcomes the reporter may show together (failures of one cause as one line)."""
    held(reporter, True)
    try:
        yield
    finally:
        held(reporter, False)
