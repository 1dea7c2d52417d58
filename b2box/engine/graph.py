"""The task graph of a workflow, built once, in time linear in its size.

Building asks every task ``complete()`` once and expands every task's
requirements. A task whose outputs exist is *complete*, unless something it
needs (directly or further up) has to run: then it is *pending* again, so
deleting one input file re-runs exactly that task and everything made from
it. An incomplete task without a ``run`` (an ``ExternalTask``) is *missing*;
everything that needs it is *blocked*, except results that already exist
(a missing raw input does not invalidate what was made from it). A complete
task whose result was made by another environment, other inputs or other
code than it would have now is *stale* (:mod:`b2box.results.staleness`):
pending again when the ``rerun_when`` setting says so, else only reported.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import os
import sys
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import luigi
import luigi.task

from b2box.api.remote.base import listing_scope
from b2box.engine.read_watch import Reads, watching
from b2box.errors import B2BoxError, users_line
from b2box.results.staleness import UNKNOWN, ResultCheck


class State(enum.Enum):
    """Where a task stands in one run of the workflow."""

    COMPLETE = "complete"  # outputs existed before the run
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"  # run in this run
    FAILED = "failed"
    MISSING = "missing"  # an external input that does not exist
    BLOCKED = "blocked"  # needs a failed or missing task

    __hash__ = object.__hash__  # (Enum's own hashes the name in Python: counting 100,000 states took 0.1 s)

    @property
    def finished(self) -> bool:
        return self in (State.COMPLETE, State.DONE)


@dataclass(eq=False, slots=True)
class Node:
    """One task and its place in the graph (slots: a graph holds 100,000 of them)."""

    task: Any
    state: State
    deps: list[Node] = field(default_factory=list)
    dependents: list[Node] = field(default_factory=list)
    waiting: int = 0
    error: str | None = None
    log_path: str | None = None
    blocked_by: Node | None = None  # the failed or missing task this one waits for in vain
    first_output: str = ""  # its first local output: its identity is kept beside it (b2box.results.records)
    stale: str = ""  # why its result is not what this run would make (pending again, or only reported)
    unknown: bool = False  # its result was made without a record of what made it (by b2luigi, an older b2box)
    broken: str = ""  # its requires(), output() or complete() raised: where and what, in one line
    more_outputs: tuple[str, ...] = ()  # its local outputs after the first (b2box.engine.kept_graph checks them)

    @property
    def task_id(self) -> str:
        return str(self.task.task_id)

    @property
    def name(self) -> str:
        """``Family(param=value, ...)``: how people name a task (luigi's ids are for machines)."""
        return readable_name(self.task)

    @property
    def family(self) -> str:
        return str(self.task.task_family)


def readable_name(task: Any) -> str:
    """``Generate(sample=bad, n_events=10)``: the family and its significant public parameters, long values cut."""
    try:
        values = task.to_str_params(only_significant=True, only_public=True)
    except Exception:  # a task whose parameters cannot be serialized: its id will do
        return str(task.task_id)
    shown = ", ".join(f"{key}={value if len(value) <= 40 else value[:37] + '...'}" for key, value in values.items())
    return f"{task.task_family}({shown})"


def is_external(task: Any) -> bool:
    """Whether luigi would treat ``task`` as external: no ``run`` to call."""
    return getattr(task, "run", None) is None


def _requirements(task: Any) -> list[Any]:
    found = luigi.task.flatten(task.requires())
    for item in found:
        if not isinstance(item, luigi.Task):
            raise TypeError(f"requires() of {task.task_id} returned {item!r}, which is not a task")
    return found


def _short_error() -> str:
    return traceback.format_exc(limit=-3)


def _one_line_error(method: str) -> str:
    """``requires() raised ZeroDivisionError: division by zero (wf.py:14)``: the exception being handled, and the
    innermost line of the user's code (not luigi's or b2box's) it came from."""
    kind, error, trace = sys.exc_info()
    line = users_line(trace, lambda filename: "/luigi/" not in filename and "/b2box/" not in filename)
    where = f" ({line})" if line else ""
    name = kind.__name__ if kind else "an error"
    return f"{method} raised {name}: {error}{where}" if str(error) else f"{method} raised {name}{where}"


def stop_if_broken(graph: TaskGraph) -> None:
    """Before a run: a task whose requires(), output() or complete() raised is the script's to fix, like a syntax
    error, not a task that failed; one error (exit 2) names each such task, where and what."""
    broken = [node for node in graph.nodes.values() if node.broken] if graph.counts()[State.FAILED] else []
    if broken:
        lines = [f"{node.name}: {node.broken}" for node in broken[:5]]
        more = f" ({len(broken) - 5} more tasks like these)" if len(broken) > 5 else ""
        raise B2BoxError("the workflow cannot be set up; fix these and run again:\n  " + "\n  ".join(lines) + more)


@contextlib.contextmanager
def _no_full_collections() -> Iterator[None]:
    """Python's cycle collector walks every object each time the long-lived ones grew by a quarter: building a graph
    of 100,000 tasks only grows, and that was 1.5 s of walking (12 % of building it) to find little garbage. The
    younger generations are still collected while it is built; the oldest again when next due after it."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


class TaskGraph:
    """All tasks reachable from the roots, with their states and edges."""

    def __init__(self, results: ResultCheck | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.roots: list[Node] = []
        self._writers: dict[str, Node] = {}  # output path -> the task that writes it
        self.results = results or ResultCheck()
        self.reads = Reads()  # what the user's code read while the graph was built (b2box.engine.read_watch)
        self.keepable = True  # every task's completeness is its local outputs' existence (b2box.engine.kept_graph)
        self.kept = False  # made from a kept graph: its tasks are stand-ins (b2box.engine.kept_tasks.KeptTask)

    @classmethod
    def build(cls, roots: Iterable[Any], results: ResultCheck | None = None) -> TaskGraph:
        graph = cls(results)
        with listing_scope(), watching() as graph.reads, _no_full_collections():  # remote outputs: one listing each
            for root in roots:
                graph.roots.append(graph._add(root))
            graph._settle()
        return graph

    def _add(self, root: Any) -> Node:
        """Depth-first, iterative (deep chains must not hit the recursion limit)."""
        existing = self.nodes.get(root.task_id)
        if existing is not None:
            return existing
        root_node = self._make_node(root)
        stack = [root_node]
        while stack:
            node = stack.pop()
            if node.state is State.FAILED:
                continue
            try:
                requirements = _requirements(node.task)
            except Exception:
                node.state, node.error = State.FAILED, "requires() raised:\n" + _short_error()
                node.broken = _one_line_error("requires()")
                continue
            for requirement in requirements:
                child = self.nodes.get(requirement.task_id)
                if child is None:
                    child = self._make_node(requirement)
                    stack.append(child)
                node.deps.append(child)
                child.dependents.append(node)
        return root_node

    def in_order(self) -> list[Node]:
        """Every task after the tasks it requires."""
        return self._topological_order()

    def _topological_order(self) -> list[Node]:
        """Requirements before the tasks that need them (Kahn's algorithm)."""
        remaining = {node.task_id: len(node.deps) for node in self.nodes.values()}
        order = [node for node in self.nodes.values() if not node.deps]
        position = 0
        while position < len(order):
            for dependent in order[position].dependents:
                remaining[dependent.task_id] -= 1
                if remaining[dependent.task_id] == 0:
                    order.append(dependent)
            position += 1
        return order

    def _settle(self) -> None:
        """Re-open results whose inputs will change; block what cannot run; count what waits."""
        order = self._topological_order()
        if len(order) != len(self.nodes):
            placed = {node.task_id for node in order}
            for node in self.nodes.values():
                if node.task_id not in placed:
                    node.state, node.error = State.FAILED, "part of a dependency cycle"
        for node in order:
            if node.state is not State.COMPLETE or is_external(node.task):
                continue
            if any(dep.state is State.PENDING for dep in node.deps):
                node.state = State.PENDING
                continue
            verdict = self.results.judge(
                node.task, node.first_output, [dep.task_id for dep in node.deps], self._name_of
            )
            if verdict is not None and verdict.differing == (UNKNOWN,):
                node.unknown = True
            elif verdict is not None and verdict.differing:
                node.stale = verdict.reasons
                if verdict.rerun:
                    node.state = State.PENDING  # stale: made otherwise than this run would make it
        for node in self.nodes.values():
            if node.state in (State.FAILED, State.MISSING):
                self.block_dependents(node)
        for node in self.nodes.values():
            node.waiting = sum(1 for dep in node.deps if not dep.state.finished)

    def identity_record(self, node: Node) -> tuple[str, dict[str, Any]] | None:
        """What the task keeps beside its outputs when it runs now: its result's identity (b2box.results)."""
        return self.results.about_to_run(node.task, node.first_output, [dep.task_id for dep in node.deps])

    def _name_of(self, task_id: str) -> str:
        return self.nodes[task_id].name

    def _make_node(self, task: Any) -> Node:
        targets: list[Any] | None = None
        if type(task).complete not in (luigi.Task.complete, luigi.WrapperTask.complete):
            self.keepable = False  # a complete() of its own may ask anything: the graph is built every time
        try:
            if type(task).complete is luigi.Task.complete:  # luigi's own check: its outputs are asked for once
                targets = luigi.task.flatten(task.output())
            complete = all(target.exists() for target in targets) if targets else bool(task.complete())
        except Exception:
            method = "output()" if targets is None and type(task).complete is luigi.Task.complete else "complete()"
            node = Node(task=task, state=State.FAILED, error=f"{method} raised:\n" + _short_error())
            node.broken = _one_line_error(method)
        else:
            if complete:
                state = State.COMPLETE
            elif is_external(task):
                state = State.MISSING
            else:
                state = State.PENDING
            node = Node(task=task, state=state)
            if state is State.MISSING:
                node.error = "external input missing: " + (", ".join(_missing_outputs(task)) or task.task_id)
        self.nodes[node.task_id] = node
        self._claim_outputs(node, targets)
        return node

    def _claim_outputs(self, node: Node, targets: list[Any] | None) -> None:
        """Two tasks with one output path would overwrite each other's result (or a merge its own input), and the
        second would look complete once the first ran: the second task found fails, naming both."""
        if node.state is State.FAILED:
            return
        if targets is None:
            try:
                targets = luigi.task.flatten(node.task.output())
            except Exception:
                return  # complete() already reported it
        if is_external(node.task):
            self._note_inputs(node, targets)
            return
        for target in targets:
            path = str(getattr(target, "path", "") or "")
            if not path:
                self.keepable = False
                continue
            if not isinstance(target, luigi.LocalTarget) or "://" in path:
                self.keepable = False
            elif not node.first_output:
                node.first_output = path
            else:
                node.more_outputs += (path,)
            key = path if "://" in path else os.path.abspath(path)
            other = self._writers.setdefault(key, node)
            if other is not node:
                node.state = State.FAILED
                node.error = (
                    f"its output {path} is also the output of {other.name}: two tasks would overwrite each other. "
                    "Give one of them a parameter that tells them apart or another output name."
                )
                return

    def _note_inputs(self, node: Node, targets: list[Any]) -> None:
        """An external input has no identity of its own: a kept graph checks only that its files are still there."""
        paths = tuple(str(getattr(target, "path", "") or "") for target in targets)
        if not all(isinstance(target, luigi.LocalTarget) for target in targets) or any("://" in p for p in paths):
            self.keepable = False
        node.more_outputs = paths

    def finish(self, node: Node) -> list[Node]:
        """``node`` is done: what became ready because of it (its dependents that wait for nothing else)."""
        node.state = State.DONE
        newly_ready = []
        for dependent in node.dependents:
            dependent.waiting -= 1
            if dependent.waiting == 0 and dependent.state is State.PENDING:
                newly_ready.append(dependent)
        return newly_ready

    def fail(self, node: Node, error: str) -> list[Node]:
        """``node`` failed with ``error``: everything that needs it is blocked; what was blocked now."""
        node.state, node.error = State.FAILED, error
        return self.block_dependents(node)

    def block_dependents(self, node: Node) -> list[Node]:
        """Mark everything that needs ``node`` as blocked; return what changed."""
        changed = []
        stack = list(node.dependents)
        while stack:
            dependent = stack.pop()
            if dependent.state is State.PENDING:
                dependent.state = State.BLOCKED
                dependent.error = f"needs {node.name} ({node.state.value})"
                dependent.blocked_by = node
                changed.append(dependent)
                stack.extend(dependent.dependents)
        return changed

    def ready(self) -> Iterator[Node]:
        """Pending tasks whose requirements are all finished, dependencies first."""
        for node in self.nodes.values():
            if node.state is State.PENDING and node.waiting == 0:
                yield node

    def counts(self) -> dict[State, int]:
        counted = dict.fromkeys(State, 0)
        counted.update(Counter(node.state for node in self.nodes.values()))
        return counted

    def by_family(self) -> dict[str, dict[State, int]]:
        families: dict[str, dict[State, int]] = {}
        for node in self.nodes.values():
            counted = families.setdefault(node.family, dict.fromkeys(State, 0))
            counted[node.state] += 1
        return families


def _missing_outputs(task: Any) -> list[str]:
    missing = []
    for target in luigi.task.flatten(task.output()):
        if not target.exists():
            missing.append(str(getattr(target, "path", target)))
    return missing
