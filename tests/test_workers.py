"""The local worker pool hands a lone worker its next task while it runs one: what that must not change.

A task counts as running only once its worker began it, one at a time per worker; a worker that dies fails the task
it was running, and the task it held next goes back in line, to run once, in a fresh worker.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from b2box.engine.workers import BEGAN, ENDED, RETURNED, Event, WorkerPool


def events_until_settled(pool: WorkerPool) -> list[Event]:
    seen: list[Event] = []
    while pool.running:
        seen += pool.wait()
    return seen


def long_beside_short(run: Callable[[str, object], str | None]) -> WorkerPool:
    """Two workers: one runs "long", the other ran "short", which has ended (a worker each: neither held both)."""
    pool = WorkerPool(2, run)
    pool.start("long")
    pool.start("short")
    assert pool.free == 0
    ended: list[str] = []
    while "short" not in ended:
        ended += [event.task_id for event in pool.wait() if event.kind == ENDED]
    return pool


def test_a_worker_holds_the_next_task_but_begins_one_at_a_time(tmp_path: Path) -> None:
    def run(task_id: str, payload: object) -> str | None:
        with open(tmp_path / "ran", "a") as handle:
            handle.write(f"{task_id}\n")
        return None if task_id != "c" else "c failed"

    pool = WorkerPool(1, run)
    try:
        for task_id in "abc":
            if pool.free:
                pool.start(task_id)
        assert pool.running == 2 and pool.free == 0  # one worker holds two
        seen = events_until_settled(pool)
        if pool.free:
            pool.start("c")
        seen += events_until_settled(pool)
    finally:
        pool.stop()
    assert [(event.task_id, event.kind, event.error) for event in seen] == [
        ("a", BEGAN, None), ("a", ENDED, None), ("b", BEGAN, None), ("b", ENDED, None),
        ("c", BEGAN, None), ("c", ENDED, "c failed"),
    ]  # fmt: skip
    assert (tmp_path / "ran").read_text() == "a\nb\nc\n"


def test_the_task_held_behind_one_that_kills_its_worker_goes_back_in_line_and_runs_once(tmp_path: Path) -> None:
    def run(task_id: str, payload: object) -> str | None:
        with open(tmp_path / "ran", "a") as handle:
            handle.write(f"{task_id} in {os.getpid()}\n")
        if task_id == "crash":
            os._exit(0)  # as C++ libraries do
        return None

    pool = WorkerPool(1, run)
    try:
        pool.start("crash")
        pool.start("next")
        seen = events_until_settled(pool)
        assert [(event.task_id, event.kind) for event in seen] == [
            ("crash", BEGAN),
            ("crash", ENDED),
            ("next", RETURNED),
        ]
        assert "os._exit()" in (seen[1].error or "")
        pool.start("next")
        again = events_until_settled(pool)
    finally:
        pool.stop()
    assert [(event.task_id, event.kind, event.error) for event in again] == [
        ("next", BEGAN, None),
        ("next", ENDED, None),
    ]
    ran = (tmp_path / "ran").read_text().splitlines()
    assert [line.split()[0] for line in ran] == ["crash", "next"]  # the held task ran once, after the crash
    assert ran[0].split()[-1] != ran[1].split()[-1]  # in a fresh worker


def test_stopping_fails_only_the_task_that_began() -> None:
    def run(task_id: str, payload: object) -> str | None:
        time.sleep(60)
        return None

    pool = WorkerPool(1, run)
    pool.start("long")
    pool.start("held")
    assert [(event.task_id, event.kind) for event in pool.wait()] == [("long", BEGAN)]
    assert pool.stop(grace=2.0) == ["long"]  # "held" never began: it stays pending


def test_with_several_workers_each_holds_one_task() -> None:
    """A task handed to a busy worker could wait behind a long task while another worker is free: with several
    workers, none is handed a second task."""

    def run(task_id: str, payload: object) -> str | None:
        time.sleep(1.0 if task_id == "long" else 0.0)
        return None

    pool = long_beside_short(run)
    try:
        assert pool.free == 1  # the worker that ran "short" takes the next task, not the one running "long"
        pool.start("next")
        seen = events_until_settled(pool)
    finally:
        pool.stop()
    ends = [event.task_id for event in seen if event.kind == ENDED]
    assert ends == ["next", "long"], "the next task ran beside the long one, not after it"


def test_a_held_task_is_not_begun_once_the_run_may_start_nothing_more(tmp_path: Path) -> None:
    """The run lost its lock while the worker ran a task: the task it held next is not begun but handed back (the
    scheduler then stops, as a run that lost its lock does)."""
    allowed = tmp_path / "lock still held"
    allowed.write_text("")

    def run(task_id: str, payload: object) -> str | None:
        allowed.unlink()  # the lock is lost while this task runs
        return None

    pool = WorkerPool(1, run, may_begin=allowed.exists)
    try:
        pool.start("running")
        pool.start("held")
        seen = events_until_settled(pool)
    finally:
        pool.stop()
    kinds = [(event.task_id, event.kind) for event in seen]
    assert kinds == [("running", BEGAN), ("running", ENDED), ("held", RETURNED)]


def test_a_task_run_leaves_its_task_object_as_it_found_it(tmp_path: Path) -> None:
    """A worker runs every task of a run and keeps them all: running one must not grow the task's own dictionary
    (what made its result and its staging were attributes of it once, 400 bytes more per task, 40 MB at 100,000)."""
    import sys

    import b2box
    from b2box.engine.execute import execute
    from b2box.results.records import identity_file
    from b2box.settings.resolved import settings_of

    class Written(b2box.Task):
        index = b2box.IntParameter()

        def output(self):  # type: ignore[no-untyped-def]
            yield self.add_to_output("written.txt")

        def run(self) -> None:
            with open(self.get_output_file_name("written.txt"), "w") as handle:
                handle.write("written\n")

    b2box.set_setting("result_dir", str(tmp_path))
    try:
        tasks = [Written(index=index) for index in range(50)]
        for task in tasks:
            settings_of(task)  # (as the graph's build does)
            list(task.output())
        sizes = [sys.getsizeof(task.__dict__) for task in tasks]
        keys = [sorted(task.__dict__) for task in tasks]
        for task in tasks:
            output = str(tmp_path / f"index={task.index}" / "written.txt")
            execute(task, lambda tasks: None, (identity_file(output), {"identity": {}}))
            assert os.path.exists(output) and os.path.exists(identity_file(output))
        assert [sorted(task.__dict__) for task in tasks] == keys
        assert [sys.getsizeof(task.__dict__) for task in tasks] == sizes
    finally:
        b2box.clear_setting("result_dir")


def test_a_worker_that_dies_idle_is_replaced_and_the_busy_one_goes_on(tmp_path: Path) -> None:
    """The pool waits on every worker's pipe and exit at once: an idle worker killed while another runs a task is
    dropped when it is seen gone (the wait goes on for the running task), and the next task runs in a live worker."""

    def run(task_id: str, payload: object) -> str | None:
        (tmp_path / task_id).write_text(str(os.getpid()))
        time.sleep(1.5 if task_id == "long" else 0.0)
        return None

    pool = long_beside_short(run)
    try:
        os.kill(int((tmp_path / "short").read_text()), signal.SIGKILL)
        seen = events_until_settled(pool)
        pool.start("next")
        seen += events_until_settled(pool)
    finally:
        pool.stop()
    assert [(event.task_id, event.kind, event.error) for event in seen] == [
        ("long", ENDED, None), ("next", BEGAN, None), ("next", ENDED, None),
    ]  # fmt: skip
    assert (tmp_path / "next").read_text() != (tmp_path / "short").read_text()
