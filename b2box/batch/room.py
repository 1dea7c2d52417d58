"""How many more jobs a run may submit now: ``--workers`` for all of them, each batch system's own limit (the most
jobs it takes, :meth:`~b2box.batch.backends.arrays.ArrayBackend.room`), each task family's ``max_jobs_in_flight``
(kept by the run, or by the batch system where it throttles arrays itself: Slurm's ``%``).

A task that finds no room stays ready, unprepared, and is looked at again after the next poll, so a campaign of
100,000 tasks on a cluster that takes 10,000 jobs prepares each job once, when it can go.

A pass also has a time: preparing a job costs about a millisecond, so 100,000 ready tasks would keep the run from
polling for minutes. Once its time is up, a pass stops where each batch system's share is a whole number of
submissions (arrays of the size it takes), and the run polls and goes on with the rest at once.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from b2box.batch.backends.base import capabilities_of, room_of
from b2box.engine.graph import Node
from b2box.settings.resolved import settings_of


class Room:
    """The room of one pass of the poll loop (see the module docstring)."""

    def __init__(
        self,
        workers: int,
        in_flight: Iterable[Node],
        backend: Callable[[str], Any],
        seconds: float | None = None,
        unit_of: Callable[[str, Any], int] = lambda system, job: 1,
    ) -> None:
        self.left = workers  # jobs of any kind
        self._backend = backend  # batch system -> its backend object
        self._systems: dict[str, int | None] = {}  # batch system -> jobs it takes now (None: no limit)
        self._families = Counter(node.family for node in in_flight)
        self._until = None if seconds is None else time.monotonic() + seconds
        self._taken: Counter[str] = Counter()  # batch system -> jobs it got in this pass
        self._units: dict[str, int] = {}  # batch system -> jobs in one of its submissions (asked once per pass)
        self._unit_of = unit_of  # (batch system, a prepared job) -> jobs like it in one submission
        self.cut_short = False  # the pass stopped for time, not for room

    def time_is_up(self) -> bool:
        """Whether the pass has had its time and stops here (only where every share is whole submissions)."""
        if self._until is None or time.monotonic() < self._until:
            return False
        self.cut_short = all(count % self._units[system] == 0 for system, count in self._taken.items())
        return self.cut_short

    def takes(self, system: str, node: Node) -> bool:
        """Whether ``node``'s job can go to ``system`` now."""
        if system not in self._systems:
            self._systems[system] = room_of(self._backend(system))
        limit = settings_of(node.task).batch.max_jobs_in_flight
        at_limit = limit is not None and self._families[node.family] >= limit
        if at_limit and not capabilities_of(self._backend(system)).throttles_arrays:  # (Slurm keeps it with its %)
            return False
        return self._systems[system] != 0

    def took(self, system: str, node: Node, job: Any = None) -> None:
        """``node``'s job (``job``, prepared) goes to ``system`` in this pass."""
        self.left -= 1
        self._taken[system] += 1
        if system not in self._units:
            self._units[system] = self._unit_of(system, job)
        self._families[node.family] += 1
        left = self._systems.get(system)
        if left is not None:
            self._systems[system] = max(0, left - 1)

    def full(self) -> list[str]:
        """The batch systems that took as many jobs as they take."""
        return [system for system, left in self._systems.items() if left == 0]
