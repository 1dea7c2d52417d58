"""The local scheduler: run a task graph in time linear in its size.

luigi's own local scheduler walks every task each time a worker asks for
work (``count_pending``, ``prune``), so N tasks cost O(N^2). Here the graph is
built once (:class:`~b2box.engine.graph.TaskGraph`), every task keeps a count of
unfinished requirements, and finishing a task only touches its dependents:
O(tasks + edges) in all.

Tasks run in worker processes (:mod:`b2box.engine.workers`), at most
``workers`` at once, even with one worker: a task that crashes, calls
``os._exit`` or is killed fails alone and the run goes on. ``--test`` and the
dynamic dependencies a ``run()`` yields run in the calling process.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

import luigi

from b2box.api import staging
from b2box.api.staging import remove_partials_of
from b2box.engine import kept_graph, meter
from b2box.engine.execute import TaskFailed, execute
from b2box.engine.graph import Node, State, TaskGraph, stop_if_broken
from b2box.engine.reporting import Reporter, SilentReporter
from b2box.engine.run_lock import LockLost, check_held, still_held
from b2box.engine.run_lock import current as current_lock
from b2box.engine.workers import BEGAN, RETURNED, WorkerPool
from b2box.settings import layout
from b2box.settings.resolved import settings_of

logger = logging.getLogger("b2box")


@dataclass
class RunResult:
    """What a run did; true when every requested task is complete."""

    graph: TaskGraph
    interrupted: bool = False
    counts: dict[State, int] = field(default_factory=dict)
    batch_stats: Any = None  # how many batch-system calls a --batch run made
    outage: str = ""  # a batch system stopped answering: why the run stopped with its jobs left as they are
    lock_lost: str = ""  # another run took this run's lock: why it stopped
    left_running: int = 0  # jobs left queued or running for the next run to re-attach to

    @property
    def success(self) -> bool:
        stopped = self.interrupted or self.outage or self.lock_lost
        return not stopped and all(node.state.finished for node in self.graph.roots)

    def __bool__(self) -> bool:
        return self.success

    @property
    def failed(self) -> list[Node]:
        return [node for node in self.graph.nodes.values() if node.state in (State.FAILED, State.MISSING)]

    @property
    def incomplete(self) -> list[Node]:
        return [node for node in self.graph.nodes.values() if not node.state.finished]


FAILURE_LOG = "failure.log"


INTERRUPTED_MARK = "[interrupted]\n"  # failure.log's first line when the task was stopped, not failed


def write_failure_log(node: Node, keep_log_path: bool = False, interrupted: bool = False) -> None:
    """Keep why a task failed beside its other logs (``failure.log``, also the mark of a task that failed last time,
    or, with :data:`INTERRUPTED_MARK` first, that was interrupted); remember where, unless the node points at a better
    log already."""
    try:
        folder = layout.get_log_file_dir(node.task)
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, FAILURE_LOG)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write((INTERRUPTED_MARK if interrupted else "") + (node.error or ""))
        if not (keep_log_path and node.log_path):
            node.log_path = path
    except Exception as exc:  # the log is a convenience; never mask the task's own failure
        logger.debug("could not write failure log of %s: %s", node.task_id, exc)


def forget_failure(node: Node) -> None:
    """The task succeeded: it no longer counts as failed last time."""
    with contextlib.suppress(OSError):
        os.remove(os.path.join(layout.get_log_file_dir(node.task), FAILURE_LOG))


def last_time(task: Any) -> str | None:
    """How the task's last run ended if it did not succeed: ``"failed"``, ``"interrupted"`` (Ctrl-C, SIGTERM: not
    the task's fault), or None (it succeeded, or never ran)."""
    try:
        with open(os.path.join(layout.get_log_file_dir(task), FAILURE_LOG), encoding="utf-8") as handle:
            first = handle.read(len(INTERRUPTED_MARK))
    except Exception:  # no record (or a task whose log folder cannot be named)
        return None
    return "interrupted" if first == INTERRUPTED_MARK else "failed"


def failed_last_time(task: Any) -> bool:
    """Whether the task's last run failed (its ``failure.log`` is there, and it was not interrupted)."""
    return last_time(task) == "failed"


def _output_paths(task: Any) -> list[str]:
    """The paths of the task's outputs, for --test's debug lines."""
    try:
        return [str(getattr(target, "path", target)) for target in luigi.task.flatten(task.output())]
    except Exception:  # a broken output() is reported when the task runs
        return []


def lock_result_dirs(graph: TaskGraph) -> None:
    """Take the locks of the local result folders the graph's tasks write, beside the workflow's own
    (:mod:`b2box.engine.run_lock`): two workflows sharing results must not run at once either."""
    lock = current_lock()
    if lock is None or graph.kept:  # (a kept graph is complete: nothing runs)
        return
    folders = set()
    for node in graph.nodes.values():
        if node.state is not State.PENDING:
            continue  # only tasks that will run write results
        settings = settings_of(node.task)
        target_class = settings.targets.default_class
        if target_class is None or (isinstance(target_class, type) and issubclass(target_class, luigi.LocalTarget)):
            folders.add(settings.folders.result_dir)
    lock.also(sorted(folders))
    graph.results.book.mark_dirty(folders)


def run_dependencies_here(tasks: list[Any]) -> None:
    """Complete the tasks a ``run()`` yielded, in this process, before it continues."""
    result = LocalScheduler(workers=1, reporter=SilentReporter(), in_process=True).run(tasks)
    if not result.success:
        problems = "; ".join(f"{node.task_id}: {(node.error or '').strip()[-300:]}" for node in result.failed)
        raise RuntimeError(f"dynamic dependencies did not complete: {problems or 'interrupted'}")


class ElsewhereRunner(Protocol):
    """Runs some tasks another way than in this Python (a task with an environment: through its wrapper, in its
    container); the layers above the engine provide it."""

    def wants(self, task: Any) -> bool:
        """Whether ``task`` must run this way."""
        ...

    def check(self, tasks: list[Any]) -> None:
        """Before anything runs: raise a B2BoxError naming what these tasks need and lack (once, not per task)."""
        ...

    def run(self, task: Any, kept: tuple[str, dict[str, Any]] | None = None) -> str | None:
        """Run ``task`` (in a worker process), keeping ``kept`` beside its outputs; None on success, else why it
        failed."""
        ...


class LocalScheduler:
    """Runs a graph with ``workers`` parallel tasks (see the module docstring)."""

    def __init__(self, workers: int = 1, reporter: Reporter | None = None, in_process: bool = False,
                 elsewhere: ElsewhereRunner | None = None, keep_graph: bool = False) -> None:  # fmt: skip
        self.workers = max(1, int(workers))
        # a command's own run keeps its complete graph, a run()'s dynamic dependencies do not (engine.kept_graph)
        self.keep_graph = keep_graph
        self.in_process = in_process  # --test and a run()'s dynamic dependencies: in this process, one at a time
        self.elsewhere = elsewhere
        self.reporter: Reporter = reporter or SilentReporter()
        self._ready: list[tuple[int, int, Node]] = []
        self._sequence = itertools.count()
        self._log_dirs: dict[str, bool] = {}  # log folders as this run found them (False: not there, so no failure.log)

    def run(self, roots: list[Any]) -> RunResult:
        self._log_dirs.clear()  # (looked at again by each run, after the failure logs written at its start)
        graph = (kept_graph.complete_graph(roots) if self.keep_graph else None) or TaskGraph.build(roots)
        basis = kept_graph.basis(graph) if self.keep_graph and not graph.kept else None
        stop_if_broken(graph)
        result = RunResult(graph=graph)
        if self.elsewhere is not None and not graph.kept:
            self.elsewhere.check([node.task for node in graph.nodes.values() if node.state is State.PENDING])
        lock_result_dirs(graph)  # (after the checks: a run stopped by them leaves no result folder behind)
        self.reporter.begin(graph)
        for node in [] if graph.kept else graph.nodes.values():
            if node.state in (State.FAILED, State.MISSING):
                write_failure_log(node)
        for node in graph.ready():
            self._push(node)
        try:
            if self.in_process:
                self._run_here(graph)
            elif self._ready:
                self._run_in_workers(graph)
        except KeyboardInterrupt:
            result.interrupted = True
        except LockLost as lost:
            result.lock_lost = str(lost)
        finally:
            graph.results.book.save()
        result.counts = graph.counts()
        if basis is not None and result.success:
            kept_graph.keep(graph, roots, basis)
        self.reporter.end(graph)
        return result

    # -- bookkeeping shared by both modes -----------------------------------------------------------

    def _push(self, node: Node) -> None:
        priority = getattr(node.task, "priority", 0) or 0
        heapq.heappush(self._ready, (-priority, next(self._sequence), node))

    def _pop(self) -> Node:
        return heapq.heappop(self._ready)[2]

    def _start(self, graph: TaskGraph, node: Node) -> tuple[str, dict[str, Any]] | None:
        """The task starts now: what to keep beside its outputs when it commits them (b2box.results)."""
        kept = self._hand_over(graph, node)
        self._began(node)
        return kept

    @staticmethod
    def _hand_over(graph: TaskGraph, node: Node) -> tuple[str, dict[str, Any]] | None:
        """The task is handed to a worker: what to keep beside its outputs when it commits them (b2box.results)."""
        check_held()  # a run that lost its lock starts nothing more
        return graph.identity_record(node)

    def _began(self, node: Node) -> None:
        node.state = State.RUNNING
        self.reporter.changed(node)

    def _succeeded(self, graph: TaskGraph, node: Node, usage: dict[str, Any] | None = None) -> None:
        """``usage``: what the task used, as its worker measured it (else its record is read for it)."""
        graph.results.finished(node.task, node.first_output, usage)
        newly_ready = graph.finish(node)
        self._forget_failure(node)
        self.reporter.changed(node)
        for dependent in newly_ready:
            self._push(dependent)

    def _forget_failure(self, node: Node) -> None:
        """:func:`forget_failure`, but where the task's log folder was not there when this run first looked (and
        this run wrote no failure.log since): nothing to forget, and 100,000 successes need no path made each."""
        if not hasattr(node.task, "get_log_file_dir"):  # (a task that names its log folder itself is asked)
            log_dir = settings_of(node.task).folders.log_dir
            there = self._log_dirs.get(log_dir)
            if there is None:
                there = self._log_dirs[log_dir] = os.path.isdir(log_dir)
            if not there:
                return
        forget_failure(node)

    def _failed(self, graph: TaskGraph, node: Node, error: str, interrupted: bool = False) -> None:
        blocked = graph.fail(node, error)
        remove_partials_of(node.task)  # its worker is gone: what it left half-written goes too
        self._log_dirs.clear()
        write_failure_log(node, interrupted=interrupted)
        self.reporter.changed(node)
        for dependent in blocked:
            self.reporter.changed(dependent)

    # -- one worker: in this process ----------------------------------------------------------------

    def _run_here(self, graph: TaskGraph) -> None:
        while self._ready:
            node = self._pop()
            kept = self._start(graph, node)
            logger.debug(
                "%s starts; it makes %s", node.task, ", ".join(map(str, _output_paths(node.task))) or "nothing"
            )
            if self.elsewhere is not None and self.elsewhere.wants(node.task):
                error = self.elsewhere.run(node.task, kept)
                if error is None:
                    self._succeeded(graph, node)
                else:
                    self._failed(graph, node, error)
                continue
            try:
                execute(node.task, run_dependencies_here, kept)
            except TaskFailed as failure:
                self._failed(graph, node, failure.explanation)
            except KeyboardInterrupt:
                self._failed(graph, node, "interrupted (Ctrl-C)", interrupted=True)
                raise
            else:
                logger.debug("%s is done", node.task)
                self._succeeded(graph, node)

    # -- the default: every task in a worker process -----------------------------------------------------

    def _run_in_workers(self, graph: TaskGraph) -> None:
        pool = WorkerPool(
            self.workers,
            run_task=lambda task_id, kept: _run_task(graph, task_id, kept, self.elsewhere),
            may_begin=still_held,
        )
        try:
            while self._ready or pool.running:
                while self._ready and pool.free > 0:
                    node = self._pop()
                    pool.start(node.task_id, self._hand_over(graph, node))
                for event in pool.wait():
                    node = graph.nodes[event.task_id]
                    if event.kind == BEGAN:
                        self._began(node)
                    elif event.kind == RETURNED:
                        self._push(node)  # its worker died before it began: it waits for the next one
                    elif event.error is None:
                        self._succeeded(graph, node, event.details)
                    else:
                        self._failed(graph, node, event.error)
        except (KeyboardInterrupt, LockLost):
            for task_id in pool.stop():
                self._failed(graph, graph.nodes[task_id], "interrupted; its outputs were discarded", interrupted=True)
            raise
        pool.stop()


def _run_task(
    graph: TaskGraph, task_id: str, kept: tuple[str, dict[str, Any]] | None, elsewhere: ElsewhereRunner | None
) -> str | None:
    """In a worker: run one task of the graph, keeping ``kept`` (its identity) beside its outputs; luigi's
    explanation if it failed, else what it used (kept in its record too: the scheduler need not read it)."""
    task = graph.nodes[task_id].task
    if elsewhere is not None and elsewhere.wants(task):
        return elsewhere.run(task, kept)
    try:
        staging.usage_meter = meter.start()  # what it used goes into the record kept with its outputs
        written = execute(task, run_dependencies_here, kept)
    except TaskFailed as failure:
        return failure.explanation
    finally:
        staging.usage_meter = None
    return written.get("usage") if written else None
