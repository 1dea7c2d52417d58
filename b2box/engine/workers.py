"""Worker processes for a local run: every task runs in a child, even with one worker.

A task that calls ``os._exit`` (C++ libraries do), segfaults or is killed
takes only its worker down: the scheduler sees the worker gone before the
task reported back, fails that task with what happened, and starts a fresh
worker for the next one. Workers are forked from the scheduler after the
task graph is built and live for the whole run, so a task costs a message
over a pipe, not a fork.

Workers ignore Ctrl-C (the scheduler decides what stops); the scheduler stops
them with SIGTERM, which makes a running task fail and discard its staged
outputs, then SIGKILL. A worker dies with its scheduler (the kernel sends it
SIGKILL when the scheduler dies, however it dies), so no task commits an
output after the run is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from b2box.api.dispatch import describe_exit
from b2box.usage import die_with_parent

_MAX_ERROR_CHARS = 16_000
_STOP = None  # the message that ends a worker


def _worker_main(connection: multiprocessing.connection.Connection, run_task: Callable[[str, Any], str | None]) -> None:
    """In the worker: run the tasks named on the pipe, one at a time, and answer each with None or the error."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        raise SystemExit(128 + signum)  # the running task fails and discards its outputs

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping:
            message = connection.recv()
            if message is _STOP:
                break
            task_id, payload = message
            error = run_task(task_id, payload)
            if stopping:
                break
            sys.stdout.flush()
            sys.stderr.flush()
            connection.send(error[-_MAX_ERROR_CHARS:] if error is not None else None)
    except (EOFError, OSError, SystemExit):
        pass
    finally:
        os._exit(0)


@dataclass(eq=False)
class _Worker:
    process: Any
    connection: multiprocessing.connection.Connection
    task_id: str | None = None  # the task it runs now
    started: float = field(default=0.0)


class WorkerPool:
    """Up to ``size`` worker processes running tasks by id through ``run_task`` (see the module docstring)."""

    def __init__(self, size: int, run_task: Callable[[str, Any], str | None]) -> None:
        self.size = max(1, size)
        self.run_task = run_task
        self._context = multiprocessing.get_context("fork")
        self._idle: list[_Worker] = []
        self._busy: dict[int, _Worker] = {}  # by sentinel

    @property
    def free(self) -> int:
        """How many more tasks can start now."""
        return self.size - len(self._busy)

    @property
    def running(self) -> int:
        return len(self._busy)

    def start(self, task_id: str, payload: Any = None) -> None:
        """Hand ``task_id`` (and what it needs from the scheduler, ``payload``) to an idle worker (a new one if
        none is idle)."""
        worker = self._idle.pop() if self._idle else self._spawn()
        worker.task_id, worker.started = task_id, time.monotonic()
        try:
            worker.connection.send((task_id, payload))
        except OSError:  # the idle worker died meanwhile: take a fresh one
            self._discard(worker)
            worker = self._spawn()
            worker.task_id, worker.started = task_id, time.monotonic()
            worker.connection.send((task_id, payload))
        self._busy[worker.process.sentinel] = worker

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe(duplex=True)
        sys.stdout.flush()
        sys.stderr.flush()
        process = self._context.Process(target=_worker_main, args=(theirs, self.run_task), daemon=False)
        process.start()
        theirs.close()
        return _Worker(process=process, connection=ours)

    def wait(self) -> list[tuple[str, str | None]]:
        """Block until tasks end; ``(task id, None)`` for each success, ``(task id, why)`` for each failure."""
        waitables: list[Any] = [worker.connection for worker in self._busy.values()]
        waitables += list(self._busy)
        finished: list[tuple[str, str | None]] = []
        for ready in multiprocessing.connection.wait(waitables):
            worker = self._find(ready)
            if worker is None or worker.task_id is None:
                continue
            task_id = worker.task_id
            try:
                answer = worker.connection.recv() if worker.connection.poll() else self._died(worker)
            except (EOFError, OSError):
                answer = self._died(worker)
            del self._busy[worker.process.sentinel]
            worker.task_id = None
            if worker.process.is_alive() and not isinstance(answer, _Death):
                self._idle.append(worker)
            else:
                self._discard(worker)
            finished.append((task_id, answer.message if isinstance(answer, _Death) else answer))
        return finished

    def _find(self, ready: Any) -> _Worker | None:
        for sentinel, worker in self._busy.items():
            if ready is worker.connection or ready == sentinel:
                return worker
        return None

    def _died(self, worker: _Worker) -> _Death:
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        if code == 0:
            why = "the task's process exited (code 0) before the task finished: something in it called os._exit()"
        else:
            why = f"the task's process died with {describe_exit(code)}"
        return _Death(why)

    def _discard(self, worker: _Worker) -> None:
        with contextlib.suppress(OSError):
            worker.connection.close()
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()

    def stop(self, grace: float = 5.0) -> list[str]:
        """Stop every worker: idle ones at once, busy ones with SIGTERM (their tasks fail and discard their
        outputs), then SIGKILL after ``grace`` seconds. The ids of the tasks that were running."""
        interrupted = [worker.task_id for worker in self._busy.values() if worker.task_id]
        for worker in self._idle:
            with contextlib.suppress(OSError):
                worker.connection.send(_STOP)
        busy = list(self._busy.values())
        for worker in busy:
            with contextlib.suppress(OSError):
                worker.process.terminate()
        deadline = time.monotonic() + grace
        for worker in [*busy, *self._idle]:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            with contextlib.suppress(OSError):
                worker.connection.close()
        self._idle.clear()
        self._busy.clear()
        return interrupted


@dataclass(frozen=True)
class _Death:
    message: str
