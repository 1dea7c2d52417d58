"""A kept graph as the engine and the reports see it (:mod:`b2box.engine.kept_graph` keeps and finds it): every
task complete, stood for by its id, family and first output; nodes are made only when something looks at them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from b2box.engine.graph import Node, State, TaskGraph
from b2box.results import records
from b2box.results.staleness import ResultCheck


class KeptTask:
    """Stands for a task of a kept graph: its id and family (no luigi task is made)."""

    __slots__ = ("result_dir", "task_family", "task_id")

    def __init__(self, task_id: str, task_family: str, result_dir: str) -> None:
        self.task_id, self.task_family, self.result_dir = task_id, task_family, result_dir

    def __repr__(self) -> str:
        return self.task_id


class KeptGraph(TaskGraph):
    """A kept graph: every task complete, counted at once, made into nodes only when something looks at them (a
    rerun with nothing to do looks at its roots and its counts)."""

    def __init__(self, results: ResultCheck, tasks: list[tuple[str, str, str, str, str]], root_ids: list[str]) -> None:
        self._made: dict[str, Node] | None = None
        self._entries: dict[str, list[str]] | None = None
        super().__init__(results)
        self.kept = True
        self._tasks = tasks  # (task id, family, result folder, first output, its index entry)
        wanted = set(root_ids)
        found = {row[0]: _node(*row) for row in tasks if row[0] in wanted}
        self.roots = [found[task_id] for task_id in root_ids]

    @property
    def nodes(self) -> dict[str, Node]:
        if self._made is None:
            roots = {node.task_id: node for node in self.roots}
            self._made = {row[0]: roots.get(row[0]) or _node(*row) for row in self._tasks}
        return self._made

    @nodes.setter
    def nodes(self, value: dict[str, Node]) -> None:
        self._made = value or None  # (TaskGraph starts with an empty dict: made when asked for)

    def counts(self) -> dict[State, int]:
        return {**dict.fromkeys(State, 0), State.COMPLETE: len(self._tasks)}

    def by_family(self) -> dict[str, dict[State, int]]:
        return {family: {**dict.fromkeys(State, 0), State.COMPLETE: count}
                for family, count in Counter(row[1] for row in self._tasks).items()}  # fmt: skip

    def ready(self) -> Iterator[Node]:
        return iter(())

    def index_entries(self) -> dict[str, list[str]]:
        """Per family, the index entry of each result: its identity, then what the local run that made it used
        (gathered once: ``status`` asks twice)."""
        if self._entries is None:
            self._entries = {}
            for row in self._tasks:
                if row[4]:
                    self._entries.setdefault(row[1], []).append(row[4])
        return self._entries


def _node(task_id: str, family: str, result_dir: str, first_output: str, _: str = "") -> Node:
    return Node(task=KeptTask(task_id, family, result_dir), state=State.COMPLETE, first_output=first_output)


def usage_known(graph: KeptGraph) -> bool:
    """Whether the indexes know what made each result of a kept graph used (else ``status`` builds the graph, to
    read the figures of results a batch job made from the job's own record)."""
    spaces = records.USAGE_SPACES
    return all(entry.count(" ") == spaces for entries in graph.index_entries().values() for entry in entries)
