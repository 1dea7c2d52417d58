"""Run a task's ``run()`` in a child process.

Code that may crash the interpreter (a segfault in a C++ library, an
``os._exit``) then fails only its task: the workflow sees a failed task
with the child's exit status and goes on with the other tasks.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any

from b2box.api.staging import OutputStaging
from b2box.api.task import Task
from b2box.settings.resolved import settings_of


class DispatchedRunFailed(RuntimeError):
    """The child process running a dispatched ``run()`` did not finish cleanly."""


def describe_exit(exitcode: int | None) -> str:
    """'exit code 3' or 'signal SIGSEGV' for a child's exit status."""
    if exitcode is None:
        return "no exit status"
    if exitcode < 0:
        try:
            return f"signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit code {exitcode}"


def _child(function: Callable[[Any], Any], task: Any) -> None:
    try:
        with OutputStaging(task):
            function(task)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def run_in_child(function: Callable[[Any], Any], task: Any) -> None:
    """Call ``function(task)`` in a forked child; raise if it fails or dies."""
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_child, args=(function, task), name=f"dispatch-{task.task_id}")
    process.start()
    try:
        process.join()
    except BaseException:
        process.terminate()
        process.join()
        raise
    if process.exitcode != 0:
        raise DispatchedRunFailed(
            f"{task.task_id}: run() in its child process ended with {describe_exit(process.exitcode)}"
        )


_DISPATCHED = "_b2box_dispatched"


def is_dispatched(task: Any) -> bool:
    """Whether ``task``'s ``run()`` is dispatched: a b2box run then starts it through its job wrapper, as b2luigi
    does (its environment, ``executable``, ``working_dir``, and ``stdout``/``stderr`` in its log folder)."""
    return isinstance(task, DispatchableTask) or bool(getattr(type(task).run, _DISPATCHED, False))


def dispatch(run_function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate ``run`` so that it executes in a child process (see the module docstring)."""

    @functools.wraps(run_function)
    def run(task: Any) -> None:
        if settings_of(task).dispatch_in_place:
            run_function(task)
        else:
            run_in_child(run_function, task)

    setattr(run, _DISPATCHED, True)
    return run


class DispatchableTask(Task):
    """A task whose ``process()`` runs in a child process; override ``process``, not ``run``."""

    def process(self) -> None:
        """The work of the task (runs in a child process)."""
        raise NotImplementedError(f"{type(self).__name__} must override process()")

    def run(self) -> None:
        dispatch(type(self).process)(self)
