"""The progress display: a redrawn status line on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

import b2box as b2luigi
from b2box.engine.progress import ProgressReporter
from b2box.engine.scheduler import LocalScheduler


class Part(b2luigi.Task):
    index = b2luigi.IntParameter()

    def output(self):
        yield self.add_to_output("part.txt")

    def run(self):
        if self.index == 2:
            raise ValueError("part 2 is broken")
        with open(self.get_output_file_name("part.txt"), "w") as handle:
            handle.write("x")


class Whole(b2luigi.WrapperTask):
    def requires(self):
        return [Part(index=i) for i in range(4)]


class Clock:
    """A fake monotonic clock so that every change is drawn."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 100.0
        return self.now


def test_terminal_gets_a_redrawn_line_and_a_failure_line(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr("b2box.engine.progress.time.monotonic", Clock())
    stream = io.StringIO()
    LocalScheduler(reporter=ProgressReporter(stream=stream, live=True)).run([Whole()])
    text = stream.getvalue()
    assert "\r\x1b[K" in text, "the status line is redrawn in place"
    assert "b2box: 5 tasks, 0 already complete, 5 to run" in text
    assert "FAILED Part(index=2) [Part_2_" in text and "part 2 is broken" in text
    assert str(tmp_path / "logs/index=2/Part/failure.log") in text
    last = text.rstrip().rsplit("\r\x1b[K", 1)[-1]
    assert last.startswith("b2box: done 3/5  running 0  pending 0  failed 1  blocked 1  in "), "with the time taken"
    assert "tasks/s, ~" in text, "the live line shows the rate and the time left"


def test_plain_stream_gets_no_control_characters(tmp_path: Path) -> None:
    stream = io.StringIO()
    LocalScheduler(reporter=ProgressReporter(stream=stream, live=False)).run([Whole()])
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0] == "b2box: 5 tasks, 0 already complete, 5 to run"
    assert any(line.startswith("b2box: FAILED Part(index=2) [Part_2_") for line in lines)
    assert lines[-1].startswith("b2box: done 3/5  running 0  pending 0  failed 1  blocked 1  in ")
    assert len(lines) == 3, "quiet: no line per task when not on a terminal"


def test_test_mode_runs_dispatch_in_process(tmp_path: Path) -> None:
    import os

    pids: list[int] = []

    class Dispatched(b2luigi.DispatchableTask):
        def output(self):
            yield self.add_to_output("d.txt")

        def process(self):
            pids.append(os.getpid())
            with open(self.get_output_file_name("d.txt"), "w") as handle:
                handle.write("x")

    result = b2luigi.process(Dispatched(), argv=["--test"], exit_on_failure=False)
    assert result and pids == [os.getpid()]
