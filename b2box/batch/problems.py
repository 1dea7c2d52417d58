"""Problems found before a run starts, told once each with the tasks that have them (not one failure per task)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import luigi

from b2box.batch.backends import registry
from b2box.batch.backends.base import capabilities_of
from b2box.engine.graph import State, TaskGraph, readable_name
from b2box.env.python_check import check_python
from b2box.env.spec import spec_for_task
from b2box.errors import B2BoxError


def check_before_submitting(graph: TaskGraph, backend: Callable[[str], Any], preparer: Callable[[str], Any]) -> None:
    """Before the first submission: every batch system and image the run needs is there (one message each)."""
    problems: dict[str, list[str]] = {}
    for node in graph.nodes.values():
        if node.state is not State.PENDING or isinstance(node.task, luigi.WrapperTask):
            continue
        try:
            name = registry.batch_system_of(node.task)
            if not capabilities_of(backend(name)).site_chooses_container:
                spec = spec_for_task(node.task)
                check_python(spec, preparer(name).identity(node.task, spec))
        except B2BoxError as error:
            record_problem(problems, error, node.task)
    raise_grouped(problems)


def raise_grouped(problems: dict[str, list[str]]) -> None:
    """One error for all problems found before a run, each once, with the tasks that have it."""
    if problems:
        raise B2BoxError("; ".join(f"{problem} (needed by {_some(ids)})" for problem, ids in problems.items()))


def record_problem(problems: dict[str, list[str]], error: Exception, task: Any) -> None:
    """Note ``error`` of ``task`` (tasks with the same problem share one entry, which names them as people do:
    ``Sum(n=3)``, not luigi's ``Sum_3_99914b932b``)."""
    problems.setdefault(_without_task(str(error), task.task_id), []).append(readable_name(task))


def _without_task(message: str, task_id: str) -> str:
    return message.removeprefix(f"{task_id}: ")


def _some(task_ids: list[str]) -> str:
    shown = ", ".join(task_ids[:3])
    return shown + (f" and {len(task_ids) - 3} more" if len(task_ids) > 3 else "")
