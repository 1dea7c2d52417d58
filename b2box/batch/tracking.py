"""What a batch run follows: the tasks whose jobs are out, and how much talking to batch systems the run took."""

from __future__ import annotations

from dataclasses import dataclass

from b2box.batch.jobs import PreparedJob
from b2box.engine.graph import Node


@dataclass(eq=False)
class TrackedTask:
    """A task whose batch job is queued or running: what the run waits for."""

    node: Node
    job: PreparedJob
    job_id: str
    backend: str


@dataclass
class BatchStats:
    """How much talking to the batch system a run took."""

    submit_calls: int = 0
    poll_calls: int = 0
    jobs: int = 0
    slowest_poll_cpu_s: float = 0.0  # the submitter's own CPU for its costliest poll (query, parsing, judging)
