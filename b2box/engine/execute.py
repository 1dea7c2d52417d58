"""Run one task in this process, the way luigi's worker would, but safely.

Around ``run()``: output folders are created, outputs are staged (see
:mod:`b2box.api.staging`), luigi's events fire (START, SUCCESS, FAILURE,
PROCESSING_TIME) and ``on_success``/``on_failure`` are called. Dynamic
dependencies (a ``run()`` that yields tasks) are handed to a callback that
completes them before ``run()`` continues. After a successful ``run()`` every
declared output must exist: a task that "succeeds" without its outputs fails
with the list of what is missing.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Collection
from typing import Any

import luigi
import luigi.task

from b2box.api.staging import OutputStaging, ResultRecord, create_output_dirs

RunDependencies = Callable[[list[Any]], None]


class TaskFailed(Exception):
    """A task's run failed; ``explanation`` is what luigi's ``on_failure`` made of it."""

    def __init__(self, task_id: str, explanation: str) -> None:
        super().__init__(f"{task_id} failed")
        self.task_id = task_id
        self.explanation = explanation


class OutputsMissing(RuntimeError):
    """``run()`` returned without creating every declared output."""


def missing_outputs(targets: list[Any], placed: Collection[str] = ()) -> list[str]:
    """Those of ``targets`` that do not exist (those whose paths are in ``placed`` were just moved into place)."""
    missing = []
    for target in targets:
        path = getattr(target, "path", None)
        if not (isinstance(path, str) and path.rstrip("/") in placed) and not target.exists():
            missing.append(str(path if path is not None else target))
    return missing


def _drive(generator: types.GeneratorType[Any, Any, Any], run_dependencies: RunDependencies) -> None:
    """Feed a ``run()`` generator the outputs of the tasks it yields, as luigi does."""
    send: Any = None
    while True:
        try:
            requested = next(generator) if send is None else generator.send(send)
        except StopIteration:
            return
        tasks = luigi.task.flatten(requested)
        pending = [task for task in tasks if not task.complete()]
        if pending:
            run_dependencies(pending)
        send = luigi.task.getpaths(requested)


def execute(task: Any, run_dependencies: RunDependencies, record: ResultRecord | None = None) -> dict[str, Any] | None:
    """Run ``task`` here, keeping ``record`` (what made its result) beside its outputs; the record as written (None
    without one). Raise :class:`TaskFailed` with luigi's explanation on any error."""
    started = time.time()
    try:
        declared = task.output()
        if isinstance(declared, types.GeneratorType):  # (asked once: the staging names them from it too)
            declared = list(declared)
        targets = luigi.task.flatten(declared)
        fresh = create_output_dirs(task, targets)
        with OutputStaging(task, record=record, fresh=fresh, declared=declared) as staging:
            task.trigger_event(luigi.Event.START, task)
            result = task.run()
            if isinstance(result, types.GeneratorType):
                _drive(result, run_dependencies)
        missing = missing_outputs(targets, staging.placed)
        if missing:
            raise OutputsMissing(
                f"{task.task_id}: run() finished but did not create "
                + ", ".join(missing)
                + ". Write each output to self.get_output_file_name(<name>) inside run()."
            )
    except (Exception, KeyboardInterrupt, SystemExit) as exc:
        explanation = task.on_failure(exc) or repr(exc)
        task.trigger_event(luigi.Event.FAILURE, task, exc)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TaskFailed(task.task_id, str(explanation)) from exc
    task.trigger_event(luigi.Event.PROCESSING_TIME, task, time.time() - started)
    task.on_success()
    task.trigger_event(luigi.Event.SUCCESS, task)
    return staging.written
