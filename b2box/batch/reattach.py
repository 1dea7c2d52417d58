"""What an earlier run left running, found again so that it is followed instead of submitted a second time.

Two records say which jobs may still run. The ledger (``batch_job.json`` of each task) holds a job id from the
moment it is known. An intent (:mod:`b2box.batch.ledger`) is written just before each submission: a task named in
an intent but without a ledger entry belongs to a submission whose answer never reached its run (it was killed in
between), and its backend looks it up (the wave's tag in the queue, the id a local job wrote when it started).
What is found is recorded and followed like a recorded job; what is not found never reached the batch system, and
is submitted anew.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import luigi

from b2box.batch import ledger
from b2box.batch.backends.base import recovered
from b2box.engine.graph import Node, State, TaskGraph
from b2box.errors import B2BoxError

Found = dict[str, list[tuple[Node, ledger.Entry]]]  # backend -> (task, its job)


def recorded(graph: TaskGraph) -> Found:
    """Pending tasks with a job an earlier run recorded, by backend."""
    found: Found = {}
    for node in graph.nodes.values():
        if node.state is State.PENDING and not isinstance(node.task, luigi.WrapperTask):
            entry = ledger.lookup(node.task)
            if entry is not None:
                found.setdefault(entry.backend, []).append((node, entry))
    return found


def recover(graph: TaskGraph, folder: str, found: Found, backend_of: Callable[[str], Any]) -> list[str]:
    """Add to ``found`` the pending tasks of submissions that earlier runs made but never recorded (each recorded in
    the ledger now); the intent files read, which the caller drops once the run has taken them over."""
    known = {node.task_id for entries in found.values() for node, _ in entries}
    by_id = {node.task_id: node for node in graph.nodes.values() if node.state is State.PENDING}
    files = ledger.read_intents(folder)
    unrecorded: dict[str, list[ledger.Intent]] = {}
    for intents in files.values():
        for intent in intents:
            if any(task in by_id and task not in known for task in intent.tasks):
                unrecorded.setdefault(intent.backend, []).append(intent)
    for name, intents in unrecorded.items():
        try:
            backend = backend_of(name)
        except B2BoxError:
            continue  # the batch system is not here: submitting the tasks to it fails in the same way
        job_ids = recovered(backend, intents)
        for intent in intents:
            job_id = job_ids.get(intent.job)
            if not job_id:
                continue
            for task_id in intent.tasks:
                node = by_id.get(task_id)
                if node is None or task_id in known:
                    continue
                hidden = intent.secret_file_of(task_id)
                ledger.record(node.task, name, job_id, hidden)
                found.setdefault(name, []).append((node, ledger.Entry(name, job_id, intent.written, hidden)))
                known.add(task_id)
    return list(files)


def untracked(intents: dict[str, list[ledger.Intent]], backend_of: Callable[[str], Any]) -> dict[str, list[str]]:
    """The job ids of this run's submissions that it has not recorded yet (it was stopped in between), by backend."""
    by_backend: dict[str, list[ledger.Intent]] = {}
    for records in intents.values():
        for intent in records:
            by_backend.setdefault(intent.backend, []).append(intent)
    return {name: list(recovered(backend_of(name), records).values()) for name, records in by_backend.items()}


def unreachable(entry: ledger.Entry, task: Any, error: Exception) -> str:
    """Why a task whose job an earlier run submitted to a batch system not reachable now cannot go on."""
    return (
        f"an earlier run submitted job {entry.job_id} for it to {entry.backend}, which cannot be reached from here "
        f"({error}). Run where {entry.backend} is, or, if that job is gone for sure, remove "
        f"{ledger.path_of(task)} and run again."
    )
