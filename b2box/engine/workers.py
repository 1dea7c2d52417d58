"""Worker processes for a local run: every task runs in a child, even with one worker.

A task that calls ``os._exit`` (C++ libraries do), segfaults or is killed
takes only its worker down: the scheduler sees the worker gone before the
task reported back, fails that task with what happened, and starts a fresh
worker for the next one. Workers are forked from the scheduler after the
task graph is built and live for the whole run, so a task costs a message
over a pipe, not a fork. A lone worker is handed its next task while it runs
one (:data:`DEPTH`): the scheduler's bookkeeping of one task overlaps the run
of the next, and the worker never waits for the scheduler between two tasks.
With more workers each holds one task, so that no task waits behind a long one
while another worker is free. A worker says when it begins each task, so a
task counts as running only then, and a task it held but never began goes back
in line if the worker dies.

Workers ignore Ctrl-C (the scheduler decides what stops); the scheduler stops
them with SIGTERM, which makes a running task fail and discard its staged
outputs, then SIGKILL. A worker dies with its scheduler (the kernel sends it
SIGKILL when the scheduler dies, however it dies), so no task commits an
output after the run is gone.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b2box.api.dispatch import describe_exit
from b2box.usage import die_with_parent

_MAX_ERROR_CHARS = 16_000
_STOP = None  # the message that ends a worker
_BEGUN = True  # what a worker says when it begins the next task it holds
_DECLINED = False  # what it says instead when it may not begin it (the run lost its lock): it goes back in line
DEPTH = 2  # tasks a lone worker holds at once: the one it runs and the next
_UNSAID = object()  # (no answer waits to be sent)
_HUNG_UP = select.POLLHUP | select.POLLERR | select.POLLNVAL


def _worker_main(
    connection: multiprocessing.connection.Connection,
    run_task: Callable[[str, Any], Any],
    may_begin: Callable[[], bool],
) -> None:
    """In the worker: run the tasks named on the pipe, one at a time, and answer each with what ``run_task`` said
    (an error, a text; else what the scheduler should know of the task's success, such as what it used); a task
    held while another ran begins only if ``may_begin()`` still says so. When the next task is waiting as one
    ends, the answer and the word on the next go in one message: one write and one wake-up of the scheduler per
    task, not two."""
    die_with_parent()
    gc.freeze()  # what the worker inherited is never its garbage: its collections need not walk (nor copy) it
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise SystemExit(128 + signum)  # the running task fails and discards its outputs

    signal.signal(signal.SIGTERM, stop)
    incoming = select.poll()  # (Connection.poll() makes a selector per call)
    incoming.register(connection.fileno(), select.POLLIN)
    try:
        answer: Any = _UNSAID  # the answer on the last task, while it waits to go with the word on the next
        while not stopping:
            if answer is not _UNSAID and not incoming.poll(0):
                connection.send(answer)  # no next task is waiting: the answer goes alone
                answer = _UNSAID
            message = connection.recv()
            if message is _STOP:
                break
            task_id, payload = message
            word = _BEGUN if may_begin() else _DECLINED
            connection.send(word if answer is _UNSAID else (answer, word))
            answer = _UNSAID
            if word is _DECLINED:
                continue
            answer = run_task(task_id, payload)
            if stopping:
                break
            sys.stdout.flush()
            sys.stderr.flush()
            answer = answer[-_MAX_ERROR_CHARS:] if isinstance(answer, str) else answer
        if answer is not _UNSAID:
            connection.send(answer)
    except (EOFError, OSError, SystemExit):
        pass
    finally:
        os._exit(0)


@dataclass(eq=False)
class _Worker:
    process: Any
    connection: multiprocessing.connection.Connection
    held: deque[str] = field(default_factory=deque)  # the tasks handed to it, in order: the first may be running
    begun: bool = False  # it began the first of them
    incoming: Any = None  # a poll object for its pipe alone: whether more of what it said waits to be read

    def __post_init__(self) -> None:
        self.incoming = select.poll()
        self.incoming.register(self.connection.fileno(), select.POLLIN)

    def said_more(self) -> bool:
        return bool(self.incoming.poll(0))


@dataclass(frozen=True)
class Event:
    """What happened to a task handed to a worker: it ``began``, it ended (``ended``, with ``error`` None on
    success, and what the worker said of it then in ``details``), or it never began and goes back in line
    (``returned``: its worker died first, or might not begin it)."""

    task_id: str
    kind: str
    error: str | None = None
    details: Any = None


BEGAN, ENDED, RETURNED = "began", "ended", "returned"


class WorkerPool:
    """Up to ``size`` worker processes running tasks by id through ``run_task`` (see the module docstring)."""

    def __init__(
        self, size: int, run_task: Callable[[str, Any], Any], may_begin: Callable[[], bool] = lambda: True
    ) -> None:
        self.size = max(1, size)
        self.may_begin = may_begin
        self.depth = DEPTH if self.size == 1 else 1  # (several workers: a task never waits behind a long one)
        self.run_task = run_task
        self._context = multiprocessing.get_context("fork")
        self._workers: dict[int, _Worker] = {}  # by sentinel
        self._poll = select.poll()  # every worker's pipe and sentinel, kept for the run (not made per wait)
        self._by_fd: dict[int, _Worker] = {}

    @property
    def free(self) -> int:
        """How many more tasks can be handed out now."""
        return self.size * self.depth - self.running

    @property
    def running(self) -> int:
        """Tasks handed out and not ended (running, or next in a worker)."""
        return sum(len(worker.held) for worker in self._workers.values())

    def start(self, task_id: str, payload: Any = None) -> None:
        """Hand ``task_id`` (and what it needs from the scheduler, ``payload``) to an idle worker, else a new one
        while there are fewer than ``size``, else the one holding fewest."""
        worker = self._choose()
        try:
            worker.connection.send((task_id, payload))
        except OSError:  # it died meanwhile (what it held comes back from wait()): take a fresh one
            worker = self._spawn()
            worker.connection.send((task_id, payload))
        worker.held.append(task_id)

    def _choose(self) -> _Worker:
        idle = [worker for worker in self._workers.values() if not worker.held]
        if idle:
            return idle[0]
        if len(self._workers) < self.size:
            return self._spawn()
        return min(self._workers.values(), key=lambda worker: len(worker.held))

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        sys.stdout.flush()
        sys.stderr.flush()
        process = self._context.Process(target=_worker_main, args=(theirs, self.run_task, self.may_begin), daemon=False)
        process.start()
        theirs.close()
        worker = self._workers[process.sentinel] = _Worker(process=process, connection=ours)
        for descriptor in (ours.fileno(), process.sentinel):
            self._by_fd[descriptor] = worker
            self._poll.register(descriptor, select.POLLIN)
        return worker

    def wait(self) -> list[Event]:
        """Block until something happens to a task handed out; what happened, in order."""
        events: list[Event] = []
        while not events and self.running:
            ready: dict[_Worker, bool] = {}  # the workers that said something, and whether each is gone
            for descriptor, mask in self._poll.poll():
                worker = self._by_fd[descriptor]
                ended = descriptor == worker.process.sentinel or bool(mask & _HUNG_UP)  # (exited, or pipe closed)
                ready[worker] = ready.get(worker, False) or ended
            for worker, gone in ready.items():
                if worker.held:
                    events += self._read(worker, gone)
                elif gone:  # an idle worker died: it held nothing, and is not handed anything more
                    self._discard(worker)
        return events

    def _read(self, worker: _Worker, gone: bool) -> list[Event]:
        """Everything ``worker`` said; when it is ``gone``, what it held."""
        events: list[Event] = []
        try:
            self._drain(worker, events)
            if not gone:
                return events
        except (EOFError, OSError):
            pass
        if worker.held and worker.begun:
            events.append(Event(worker.held.popleft(), ENDED, self._died(worker)))
        events += [Event(task_id, RETURNED) for task_id in worker.held]
        worker.held.clear()
        self._discard(worker)
        return events

    @classmethod
    def _drain(cls, worker: _Worker, events: list[Event]) -> None:
        """What ``worker`` has said and was not read yet, as events (its held tasks kept up to date)."""
        while worker.held and worker.said_more():
            message = worker.connection.recv()
            if isinstance(message, tuple):  # the answer on one task and the word on the next
                cls._heard(worker, message[0], events)
                message = message[1]
            cls._heard(worker, message, events)

    @staticmethod
    def _heard(worker: _Worker, message: Any, events: list[Event]) -> None:
        if message is _BEGUN:
            worker.begun = True
            events.append(Event(worker.held[0], BEGAN))
        elif message is _DECLINED:
            events.append(Event(worker.held.popleft(), RETURNED))
        else:
            worker.begun = False
            error, details = (message, None) if isinstance(message, str) else (None, message)
            events.append(Event(worker.held.popleft(), ENDED, error, details))

    @staticmethod
    def _died(worker: _Worker) -> str:
        """Why the task ``worker`` was running failed: how the worker ended."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code == 0:
            return "the task's process exited (code 0) before the task finished: something in it called os._exit()"
        return f"the task's process died with {describe_exit(code)}"

    def _discard(self, worker: _Worker) -> None:
        self._workers.pop(worker.process.sentinel, None)
        self._forget(worker)
        with contextlib.suppress(OSError):
            worker.connection.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()

    def stop(self, grace: float = 5.0) -> list[str]:
        """Stop every worker: idle ones at once, busy ones with SIGTERM (their tasks fail and discard their
        outputs), then SIGKILL after ``grace`` seconds. The ids of the tasks that were running (a task a worker held
        but had not begun stays pending)."""
        for worker in self._workers.values():  # what they said so far: which task each had begun
            with contextlib.suppress(EOFError, OSError):
                self._drain(worker, [])
        interrupted = [worker.held[0] for worker in self._workers.values() if worker.held and worker.begun]
        busy = [worker for worker in self._workers.values() if worker.held]
        idle = [worker for worker in self._workers.values() if not worker.held]
        for worker in idle:
            with contextlib.suppress(OSError):
                worker.connection.send(_STOP)
        for worker in busy:
            with contextlib.suppress(OSError):
                worker.process.terminate()
        deadline = time.monotonic() + grace
        for worker in [*busy, *idle]:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            self._forget(worker)
            with contextlib.suppress(OSError):
                worker.connection.close()
        self._workers.clear()
        return interrupted

    def _forget(self, worker: _Worker) -> None:
        """No longer wait on ``worker``'s pipe and sentinel."""
        for descriptor in (worker.connection.fileno(), worker.process.sentinel):
            if self._by_fd.get(descriptor) is worker:
                del self._by_fd[descriptor]
                self._poll.unregister(descriptor)
