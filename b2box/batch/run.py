"""The poll loop shared by all backends: submit ready tasks in waves, follow them, decide.

Each pass submits every task that has become ready (one ``submit`` call per
wave), then asks the backend for the state of all active jobs in one
``poll`` call. A job that has left the batch system is judged by its own
exit record (``exit.json``, written by the wrapper) and by the task's
outputs: exit code 0 without every output is a failure, and a job that
vanished without a record is a failure, never a success.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import luigi.task

from b2box.batch.backend import Backend, JobStatus
from b2box.batch.prepare import JobPreparer, PreparedJob
from b2box.errors import B2BoxError
from b2box.execution import missing_outputs
from b2box.graph import Node, State, TaskGraph
from b2box.job import read_json
from b2box.scheduling import Reporter, RunResult, SilentReporter

_TAIL_LINES = 5


@dataclass(eq=False)
class _Active:
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
    extra: dict[str, Any] = field(default_factory=dict)


def _tail(path: str, lines: int = _TAIL_LINES) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:]).strip()
    except OSError:
        return ""


def judge(job: PreparedJob, status: JobStatus) -> str | None:
    """None when the job succeeded; otherwise why it failed."""
    record = read_json(job.exit_file)
    if record is None:
        code = f" (exit code {status.exit_code})" if status.exit_code is not None else ""
        return (f"the job ended without writing {job.exit_file}{code}: it was killed or never started. "
                f"{status.reason}".strip())
    exit_code = record.get("exit_code")
    if exit_code != 0:
        tail = _tail(job.stderr)
        return f"the job exited with code {exit_code}" + (f":\n{tail}" if tail else "")
    missing = missing_outputs(luigi.task.flatten(job.task.output()))
    if missing:
        return "the job exited 0 but did not create " + ", ".join(missing)
    return None


class BatchRunner:
    """Runs a task graph through batch backends (see the module docstring).

    Each task goes to the backend its ``batch_system`` setting names; tasks
    that only require others (``WrapperTask``) finish here at once instead of
    occupying a batch slot.
    """

    def __init__(self, workers: int, reporter: Reporter | None = None, poll_interval: float = 1.0,
                 backends: dict[str, Backend] | None = None) -> None:
        self.workers = max(1, workers)
        self.reporter: Reporter = reporter or SilentReporter()
        self.poll_interval = poll_interval
        self.backends: dict[str, Backend] = dict(backends or {})
        self.preparers: dict[str, JobPreparer] = {}
        self.stats = BatchStats()

    def run(self, tasks: Sequence[Any]) -> RunResult:
        graph = TaskGraph.build(tasks)
        result = RunResult(graph=graph)
        self.reporter.begin(graph)
        ready = list(graph.ready())
        active: dict[str, _Active] = {}
        try:
            while ready or active:
                ready = self._start_wave(graph, ready, active)
                if not active:
                    continue
                self._wait(active)
                for name in sorted({entry.backend for entry in active.values()}):
                    ids = [job_id for job_id, entry in active.items() if entry.backend == name]
                    statuses = self.backends[name].poll(ids)
                    self.stats.poll_calls += 1
                    for job_id, status in statuses.items():
                        if not status.state.active and job_id in active:
                            ready += self._finish(graph, active.pop(job_id), status)
        except KeyboardInterrupt:
            result.interrupted = True
            for name in {entry.backend for entry in active.values()}:
                self.backends[name].cancel([i for i, e in active.items() if e.backend == name])
            for entry in active.values():
                self._fail(graph, entry.node, "interrupted (Ctrl-C); the job was removed", entry.job)
        finally:
            for backend in self.backends.values():
                backend.close()
        result.counts = graph.counts()
        self.reporter.end(graph)
        return result

    def backend(self, name: str) -> Backend:
        if name not in self.backends:
            self.backends[name] = backend_for(name)
        return self.backends[name]

    def _wait(self, active: dict[str, _Active]) -> None:
        names = {entry.backend for entry in active.values()}
        waiter = "local" if "local" in names else sorted(names)[0]
        self.backends[waiter].wait(self.poll_interval)

    def _start_wave(self, graph: TaskGraph, ready: list[Node], active: dict[str, _Active]) -> list[Node]:
        """Finish wrappers here; prepare and submit the rest, one submit call per backend."""
        waves: dict[str, list[tuple[Node, PreparedJob]]] = {}
        rest: list[Node] = []
        room = self.workers - len(active)
        for position, node in enumerate(ready):
            if isinstance(node.task, luigi.WrapperTask):
                rest += self._finish_wrapper(graph, node)
                continue
            if room <= 0:
                rest += ready[position:]
                break
            try:
                name = resolve_batch_system(node.task)
                job = self.preparers.setdefault(name, JobPreparer(name)).prepare(node.task)
                self.backend(name)
            except B2BoxError as error:
                self._fail(graph, node, str(error), None)
                continue
            waves.setdefault(name, []).append((node, job))
            room -= 1
        for name, wave in waves.items():
            job_ids = self.backends[name].submit([job for _, job in wave])
            self.stats.submit_calls += 1
            self.stats.jobs += len(wave)
            for node, job in wave:
                job_id = job_ids[job.task_id]
                active[job_id] = _Active(node=node, job=job, job_id=job_id, backend=name)
                node.state = State.RUNNING
                node.log_path = job.stderr
                self.reporter.changed(node)
        return rest

    def _finish_wrapper(self, graph: TaskGraph, node: Node) -> list[Node]:
        node.state = State.RUNNING
        self.reporter.changed(node)
        return self._succeed(node)

    def _finish(self, graph: TaskGraph, entry: _Active, status: JobStatus) -> list[Node]:
        problem = judge(entry.job, status)
        if problem is not None:
            self._fail(graph, entry.node, f"{entry.job_id}: {problem}", entry.job)
            return []
        return self._succeed(entry.node)

    def _succeed(self, node: Node) -> list[Node]:
        node.state = State.DONE
        self.reporter.changed(node)
        newly_ready = []
        for dependent in node.dependents:
            dependent.waiting -= 1
            if dependent.waiting == 0 and dependent.state is State.PENDING:
                newly_ready.append(dependent)
        return newly_ready

    def _fail(self, graph: TaskGraph, node: Node, message: str, job: PreparedJob | None) -> None:
        node.state, node.error = State.FAILED, message
        if job is not None:
            node.log_path = job.stderr if os.path.exists(job.stderr) else job.log_dir
        self.reporter.changed(node)
        for blocked in graph.block_dependents(node):
            self.reporter.changed(blocked)


_DETECTION = (("bsub", "lsf"), ("condor_submit", "htcondor"), ("sbatch", "slurm"))


def resolve_batch_system(task: Any) -> str:
    """The task's ``batch_system``; ``auto`` picks the first batch system found here, as b2luigi does."""
    from b2box.settings import get_setting

    name = str(get_setting("batch_system", default="auto", task=task))
    if name == "auto":
        name = next((system for command, system in _DETECTION if shutil.which(command)), "local")
    return name


def backend_for(name: str) -> Backend:
    """The backend for a ``batch_system`` value."""
    if name == "local":
        from b2box.batch.local import LocalBackend

        return LocalBackend()
    raise B2BoxError(f"batch_system {name!r} is not available in this version of b2box; use 'local'.")


def run_batch(tasks: Sequence[Any], workers: int, reporter: Reporter | None = None) -> RunResult:
    """``--batch``: every task as a job of its batch system."""
    runner = BatchRunner(workers=workers, reporter=reporter)
    result = runner.run(tasks)
    result.batch_stats = runner.stats
    return result
