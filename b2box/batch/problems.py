"""Problems found before a run starts, told once each with the tasks that have them (not one failure per task)."""

from __future__ import annotations

from b2box.errors import B2BoxError


def raise_grouped(problems: dict[str, list[str]]) -> None:
    """One error for all problems found before a run, each once, with the tasks that have it."""
    if problems:
        raise B2BoxError("; ".join(f"{problem} (needed by {_some(ids)})" for problem, ids in problems.items()))


def record_problem(problems: dict[str, list[str]], error: Exception, task_id: str) -> None:
    """Note ``error`` of ``task_id`` (tasks with the same problem share one entry)."""
    problems.setdefault(_without_task(str(error), task_id), []).append(task_id)


def _without_task(message: str, task_id: str) -> str:
    return message.removeprefix(f"{task_id}: ")


def _some(task_ids: list[str]) -> str:
    shown = ", ".join(task_ids[:3])
    return shown + (f" and {len(task_ids) - 3} more" if len(task_ids) > 3 else "")
