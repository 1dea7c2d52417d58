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
import time
from collections.abc import Sequence
from typing import Any

import luigi.task

from b2box.api.staging import remove_partials_of
from b2box.batch import failpoints, ledger, reattach, secrets
from b2box.batch.attempts import Attempts
from b2box.batch.backends import registry
from b2box.batch.backends.base import Backend, JobState, JobStatus, adopt_jobs, array_unit, capabilities_of, why_full
from b2box.batch.grouping import PackedJob, pack
from b2box.batch.jobs import PreparedJob, submitted_job
from b2box.batch.notices import Notices
from b2box.batch.pacing import WATCHED_JOBS, Backlog, SubmissionOutcomes, until_one_ends
from b2box.batch.problems import check_before_submitting
from b2box.batch.retry import BatchSystemUnavailable, RetryPolicy
from b2box.batch.room import Room
from b2box.batch.systems import RunSystems
from b2box.batch.tracking import BatchStats, TrackedTask
from b2box.batch.verdict import Problem, judge, memory_kill, with_explanations
from b2box.engine import kept_graph
from b2box.engine.graph import Node, State, TaskGraph, stop_if_broken
from b2box.engine.reporting import Reporter, SilentReporter, outcomes_together
from b2box.engine.run_lock import LockLost, check_held
from b2box.engine.scheduler import RunResult, forget_failure, lock_result_dirs, write_failure_log
from b2box.errors import B2BoxError
from b2box.job.main import current as current_job
from b2box.settings.declared import default_of
from b2box.settings.resolved import drop_resolved_settings, run_settings


class BatchRunner:
    """Runs a task graph through batch backends (see the module docstring).

    Each task goes to the backend its ``batch_system`` setting names; tasks
    that only require others (``WrapperTask``) finish here at once instead of
    occupying a batch slot. A held or failed job is removed and submitted
    again up to the task's ``retries`` setting. Job ids are written to disk
    as soon as they are known (:mod:`b2box.batch.ledger`), so a restarted
    workflow re-attaches to its jobs instead of submitting them again.
    """

    def __init__(
        self,
        workers: int,
        reporter: Reporter | None = None,
        poll_interval: float | None = None,
        backends: dict[str, Backend] | None = None,
        keep_jobs: bool = False,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.workers = max(1, workers)
        self.reporter: Reporter = reporter or SilentReporter()
        self.poll_interval = float(default_of("batch_poll_interval") if poll_interval is None else poll_interval)
        self.systems = RunSystems(dict(backends or {}), retry_policy or RetryPolicy(), self.reporter.note)
        self.backends, self.backend, self.preparer = self.systems.backends, self.systems.backend, self.systems.preparer
        self.keep_jobs = keep_jobs
        self.stats = BatchStats()
        self.active: dict[str, list[TrackedTask]] = {}  # batch job id -> the tasks it runs (several when grouped)
        self.notices = Notices(self.reporter.note)  # holds, suspensions, retries, full queues: told once, grouped
        self.attempts = Attempts(self.notices)  # retries used, and each resubmitted task's next attempt
        self.intents: dict[str, list[ledger.Intent]] = {}  # this run's submissions not recorded yet
        self.backlog = Backlog()  # jobs that ended, judged a share per poll
        self.hurry = False  # the last pass stopped for time with tasks left: poll without waiting
        self.submitted = SubmissionOutcomes(self.reporter)  # shown together, across passes cut short for time

    def run(self, tasks: Sequence[Any]) -> RunResult:
        if current_job() is not None:
            raise B2BoxError(
                "a batch job tried to submit batch jobs itself; refusing (this would multiply jobs "
                "without end). Call process() only under `if __name__ == '__main__':`."
            )
        roots = list(tasks)
        graph = kept_graph.complete_graph(roots) or TaskGraph.build(roots)
        if graph.kept:  # complete and up to date (b2box.engine.kept_graph): nothing to submit, no batch system asked
            return self._nothing_to_do(graph)
        basis = kept_graph.basis(graph) if run_settings().keep_graph else None
        stop_if_broken(graph)
        check_before_submitting(graph, self.backend, self.preparer)
        lock_result_dirs(graph)  # (after the checks: a run stopped by them leaves no result folder behind)
        result = RunResult(graph=graph)
        self.reporter.begin(graph)
        try:
            with outcomes_together(self.reporter):
                ready = self._reattach(graph, list(graph.ready()))
            while ready or self.active:
                check_held()  # a run that lost its lock submits nothing more
                with self.submitted:  # failures of one cause: one line
                    ready = self._start_wave(graph, ready)
                self.submitted.pass_ended(cut_short=self.hurry)
                if self.active:
                    if not (self.hurry or self.backlog):
                        self._wait()
                    started = time.process_time()
                    with outcomes_together(self.reporter):
                        ready += self._poll(graph)
                    self.stats.slowest_poll_cpu_s = max(self.stats.slowest_poll_cpu_s, time.process_time() - started)
        except KeyboardInterrupt:
            result.interrupted = True
            self._interrupted(graph)
        except BatchSystemUnavailable as outage:
            result.outage = str(outage)  # jobs stay as they are: the next run re-attaches to them
        except LockLost as lost:
            result.lock_lost = str(lost)  # jobs stay as they are: the run that took the lock re-attaches to them
        finally:
            result.left_running = sum(len(entries) for entries in self.active.values())
            graph.results.book.save(settled=not result.left_running)  # jobs left running commit later
            for backend in self.backends.values():
                backend.close(leave_running=bool(self.active) or bool(result.lock_lost))
        result.counts = graph.counts()
        if basis is not None and result.success and not result.left_running:
            kept_graph.keep(graph, roots, basis)
        self.reporter.end(graph)
        return result

    def _nothing_to_do(self, graph: TaskGraph) -> RunResult:
        self.reporter.begin(graph)
        result = RunResult(graph=graph, counts=graph.counts())
        self.reporter.end(graph)
        return result

    # -- talking to backends ------------------------------------------------------------------------

    def _ids_by_backend(self) -> dict[str, list[str]]:
        """The active jobs of each backend, but those known to have ended (waiting to be judged)."""
        grouped: dict[str, list[str]] = {}
        for job_id, entries in self.active.items():
            if job_id not in self.backlog:
                grouped.setdefault(entries[0].backend, []).append(job_id)
        return grouped

    def _wait(self) -> None:
        """Wait on a backend whose wait() returns the moment a job ends, if one has jobs; else until one of the last
        few jobs writes its exit record, or the poll interval is over (:func:`~b2box.batch.pacing.until_one_ends`)."""
        names = sorted({entries[0].backend for entries in self.active.values()})
        waking = [name for name in names if capabilities_of(self.backends[name]).wakes_on_job_end]
        if waking or len(self.active) > WATCHED_JOBS:
            self.backends[(waking or names)[0]].wait(self.poll_interval)
        else:
            until_one_ends(
                [entry.job.exit_file for group in self.active.values() for entry in group], self.poll_interval
            )

    def _poll(self, graph: TaskGraph) -> list[Node]:
        """One status query per backend for its active jobs not yet known to have ended; then a share of the
        ended jobs judged (:mod:`b2box.batch.pacing`); what became ready."""
        newly_ready: list[Node] = []
        for name, ids in sorted(self._ids_by_backend().items()):
            exit_files = {job_id: [entry.job.exit_file for entry in self.active[job_id]] for job_id in ids}
            statuses = with_explanations(self.backends[name], self.backends[name].poll(ids), exit_files)
            self.stats.poll_calls += 1
            for job_id, status in statuses.items():
                if job_id not in self.active:
                    continue
                self.notices.job(job_id, [entry.node.task_id for entry in self.active[job_id]], status)
                if status.state is JobState.HELD:
                    self.backends[name].cancel([job_id])
                    for entry in self._finished(job_id):
                        held = memory_kill(entry.job, status) or Problem(status.reason)
                        newly_ready += self._retry_or_fail(graph, entry, job_id, held)
                elif not status.state.active:
                    self.backlog.add(job_id, status)
        for job_id, status in self.backlog.share():
            for entry in self._finished(job_id):
                problem = judge(entry.job, status)
                if problem is None:
                    ledger.forget(entry.node.task)
                    newly_ready += self._succeed(graph, entry.node)
                else:
                    newly_ready += self._retry_or_fail(graph, entry, job_id, problem)
        self.notices.tell()
        return newly_ready

    def _start_wave(self, graph: TaskGraph, ready: list[Node]) -> list[Node]:
        """Finish wrappers here; prepare and submit the rest, one submit call per backend."""
        waves: dict[str, list[tuple[Node, PreparedJob]]] = {}
        rest: list[Node] = []
        in_flight = (entry.node for entries in self.active.values() for entry in entries)
        unit_of = lambda name, job: array_unit(self.backends[name], job)  # noqa: E731 - (asked once per pass)
        room = Room(self.workers - len(self.active), in_flight, self.backend, max(1.0, self.poll_interval), unit_of)
        for position, node in enumerate(ready):
            if isinstance(node.task, luigi.WrapperTask):
                rest += self._finish_wrapper(graph, node)
                continue
            if room.left <= 0 or room.time_is_up():
                rest += ready[position:]
                break
            try:
                drop_resolved_settings(node.task)  # every submission (a retry too) sees the settings as they are now
                name = registry.batch_system_of(node.task)
                if not room.takes(name, node):  # prepared when there is room
                    rest.append(node)
                    continue
                attempt = self.attempts.next_of(node.task_id)
                job = self.preparer(name).prepare(node.task, graph.identity_record(node), attempt)
                self.systems.prepared(job)
            except B2BoxError as error:
                self._fail(graph, node, str(error), None)
                continue
            waves.setdefault(name, []).append((node, job))
            room.took(name, node, job)
        self.hurry = room.cut_short
        for name in room.full():
            self.notices.full(name, len(rest), why_full(self.backends[name]))
        for name, wave in waves.items():
            packed = {
                batch_job.job.task_id: batch_job for batch_job in pack(wave, self.preparer(name), self.backends[name])
            }
            intent = self._intend(name, list(packed.values()))
            failpoints.reached("intended-unsubmitted")
            self.stats.submit_calls += 1
            for submitted in self.backends[name].submit([batch_job.job for batch_job in packed.values()]):
                for packed_id, job_id in submitted.job_ids.items():  # recorded before the next call can fail
                    failpoints.reached("submitted-unrecorded")
                    self.stats.jobs += 1
                    for node, job in packed.pop(packed_id).members:
                        ledger.record(node.task, name, job_id, job.secret_file)
                        self._track(node, job, job_id, name)
                for packed_id, why in submitted.refused.items():
                    for node, job in packed.pop(packed_id).members:
                        self._fail(graph, node, why, job)
                for packed_id in submitted.deferred:  # submitted when the batch system has room again
                    rest += [node for node, _ in packed.pop(packed_id).members]
                if submitted.deferred:
                    self.notices.full(name, len(submitted.deferred), why_full(self.backends[name]))
            ledger.drop_intents(intent)  # every job id is recorded: the intents have served
            del self.intents[intent]
        return rest

    def _intend(self, name: str, packed: list[PackedJob]) -> str:
        """Write down the jobs about to go to ``name`` before the call (:mod:`b2box.batch.reattach`)."""
        jobs = [(batch_job.job.task_id, batch_job.job.log_dir, {node.task_id: job.secret_file for node, job in
                 batch_job.members}) for batch_job in packed]  # fmt: skip
        path, self.intents[path] = ledger.write_intents(run_settings().state_dir, name, jobs)
        return path

    def _finished(self, job_id: str) -> list[TrackedTask]:
        """The tasks of a job that has ended (or was removed); a secrets file it never read goes now."""
        entries = self.active.pop(job_id)
        self.notices.forget(job_id)
        for entry in entries:
            secrets.remove_file(entry.job.secret_file)
        return entries

    def _track(self, node: Node, job: PreparedJob, job_id: str, backend: str) -> None:
        if capabilities_of(self.backends[backend]).follows_jobs:  # it judges a job by its task (the grid)
            self.backends[backend].follow(job_id, job)
        self.active.setdefault(job_id, []).append(TrackedTask(node=node, job=job, job_id=job_id, backend=backend))
        node.state = State.RUNNING
        node.log_path = job.stderr
        self.reporter.changed(node)

    def _reattach(self, graph: TaskGraph, ready: list[Node]) -> list[Node]:
        """Adopt the jobs a killed earlier run left queued or running (:mod:`b2box.batch.reattach`); the rest of
        ``ready`` is returned."""
        found = reattach.recorded(graph)
        read = reattach.recover(graph, run_settings().state_dir, found, self.backend)
        adopted: set[str] = set()
        running = 0
        for name, entries in found.items():
            try:
                backend = self.backend(name)
            except B2BoxError as error:  # never submit again what may still run elsewhere
                for node, entry in entries:
                    self._fail(graph, node, reattach.unreachable(entry, node.task, error), None)
                    adopted.add(node.task_id)
                continue
            running += self._adopt(backend, name, entries, adopted)
        for path in read:
            ledger.drop_intents(path)
        if running:
            self.reporter.note(f"b2box: re-attached to {running} job(s) of an earlier run")
        if len(adopted) > running:
            self.reporter.note(f"b2box: collecting {len(adopted) - running} job(s) an earlier run left, which ended")
        return [node for node in ready if node.task_id not in adopted]

    def _adopt(self, backend: Backend, name: str, entries: list[tuple[Node, ledger.Entry]], adopted: set[str]) -> int:
        """Follow the earlier run's jobs of ``backend`` (one status query for all); how many still run."""
        described = {
            node.task_id: submitted_job(node.task, entry.submitted, entry.secret_file) for node, entry in entries
        }
        if capabilities_of(backend).follows_jobs:
            for node, entry in entries:
                backend.follow(entry.job_id, described[node.task_id])
        statuses = backend.poll([entry.job_id for _, entry in entries])  # an outage stops the run here
        self.stats.poll_calls += 1
        running = 0
        for node, entry in entries:
            status = statuses.get(entry.job_id, JobStatus(JobState.FINISHED))
            if node.waiting == 0:  # adopted: judged by the next poll like any job of this run
                self._track(node, described[node.task_id], entry.job_id, name)
                adopted.add(node.task_id)
                running += status.state.active
                adopt_jobs(backend, [entry.job_id] if status.state.active else [])
            else:
                if status.state.active:
                    backend.cancel([entry.job_id])  # its inputs are being remade
                secrets.remove_file(entry.secret_file)
                ledger.forget(node.task)
        return running

    def _interrupted(self, graph: TaskGraph) -> None:
        """Ctrl-C or SIGTERM: remove the run's jobs, or with ``--keep-jobs`` leave them (still tracked as running,
        their ids in the ledger, so the next run re-attaches)."""
        if self.keep_jobs:
            return
        entries = [entry for group in self.active.values() for entry in group]
        try:  # jobs this run started but had not recorded yet when it was stopped
            unknown = reattach.untracked(self.intents, self.backend)
        except BatchSystemUnavailable:
            unknown = {}
        by_backend = self._ids_by_backend()
        for name, ids in unknown.items():
            by_backend.setdefault(name, []).extend(job_id for job_id in ids if job_id not in self.active)
        for name, ids in by_backend.items():
            try:
                self.backends[name].cancel(ids)
            except BatchSystemUnavailable as outage:
                self.reporter.note(f"b2box: could not remove the jobs: {outage}")
                return  # they stay in the ledger: the next run re-attaches to them
        for job_id in list(self.active):
            self._finished(job_id)
        for path, intents in list(self.intents.items()):  # every job of them is removed: submitted anew next time
            for task_id in (task for intent in intents for task in intent.tasks):
                remove_partials_of(graph.nodes[task_id].task)
            ledger.drop_intents(path)
            del self.intents[path]
        for entry in entries:
            ledger.forget(entry.node.task)
            self._fail(graph, entry.node, f"interrupted; job {entry.job_id} was removed", entry.job, interrupted=True)

    # -- outcomes -----------------------------------------------------------------------------------

    def _finish_wrapper(self, graph: TaskGraph, node: Node) -> list[Node]:
        node.state = State.RUNNING
        self.reporter.changed(node)
        return self._succeed(graph, node)

    def _retry_or_fail(self, graph: TaskGraph, entry: TrackedTask, job_id: str, problem: Problem) -> list[Node]:
        """Submit the task again (with more memory after a kill for memory, if it may grow), or fail it."""
        ledger.forget(entry.node.task)
        message = f"{job_id}: {problem.text}"
        if not self.attempts.again(entry.node.family, entry.job, problem, message):
            self._fail(graph, entry.node, message, entry.job)
            return []
        entry.node.state = State.PENDING
        self.reporter.changed(entry.node)
        return [entry.node]

    def _succeed(self, graph: TaskGraph, node: Node) -> list[Node]:
        graph.results.finished(node.task, node.first_output)
        newly_ready = graph.finish(node)
        if not isinstance(node.task, luigi.WrapperTask):
            forget_failure(node)
        self.reporter.changed(node)
        return newly_ready

    def _fail(
        self, graph: TaskGraph, node: Node, message: str, job: PreparedJob | None, interrupted: bool = False
    ) -> None:
        blocked = graph.fail(node, message)
        if job is not None:  # its job was judged or removed: what it left half-written goes too
            remove_partials_of(node.task)
            node.log_path = job.stderr if os.path.exists(job.stderr) else job.log_dir
        write_failure_log(node, keep_log_path=True, interrupted=interrupted)
        self.reporter.changed(node)
        for dependent in blocked:
            self.reporter.changed(dependent)


def run_batch(
    tasks: Sequence[Any], workers: int, reporter: Reporter | None = None, keep_jobs: bool = False
) -> RunResult:
    """``--batch``: every task as a job of its batch system."""
    settings = run_settings(workers)
    policy = RetryPolicy(limit=settings.batch_retry_limit, command_timeout=settings.batch_command_timeout)
    runner = BatchRunner(
        settings.workers, reporter, settings.batch_poll_interval, keep_jobs=keep_jobs, retry_policy=policy
    )
    result = runner.run(tasks)
    result.batch_stats = runner.stats
    return result
