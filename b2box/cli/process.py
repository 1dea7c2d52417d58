"""``process()``: the entry point a workflow script calls, with b2luigi's flags.

``python script.py [flags]`` and ``b2box run script.py [flags]`` end here.
Unlike b2luigi, the exit status tells the truth: 0 when every requested
task is complete, 1 when a task failed or was left incomplete (and for
``--dry-run`` when work is pending), 2 for bad settings or flags, 130 after
Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import luigi

from b2box.batch.backends import registry
from b2box.cli import flags, graph, inspection, report, task_arguments
from b2box.engine import luigi_lines
from b2box.engine.central import CentralSchedulerReporter, CentralSchedulerUnreachable
from b2box.engine.graph import State, TaskGraph
from b2box.engine.progress import ProgressReporter
from b2box.engine.reporting import Reporter, ReporterGroup
from b2box.engine.run_lock import RunLock, WorkflowLocked
from b2box.engine.scheduler import LocalScheduler, RunResult, run_dependencies_here, write_failure_log
from b2box.errors import B2BoxError
from b2box.job import main as job_main
from b2box.settings.lookup import STRICT_SETTINGS, set_setting, validate_settings
from b2box.settings.resolved import DISPATCH_IN_PLACE, run_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_LOCKED = 4  # another run of the same workflow is running
EXIT_BATCH_UNAVAILABLE = 75  # a batch system stopped answering; jobs left as they are (sysexits' EX_TEMPFAIL)
logger = logging.getLogger("b2box")
calls = 0  # how often process() was called; `b2box run` checks that the script called it

_ = registry  # every batch system and its settings are known (the settings model is made from them)


def _leave_the_heap_to_the_os() -> None:
    """At exit, the garbage collector's last sweep over a 100,000-task graph took seconds (1.3 s after a no-op
    rerun, 3.5 s after a batch run) to free memory the OS takes back at once: the objects still alive are frozen
    out of it. Registered by the first process() call, so handlers registered later (the script's) run first."""
    gc.freeze()


def build_parser() -> argparse.ArgumentParser:
    """The flags every workflow script understands (b2luigi's, plus ``--workers``, ``--status`` ...): see flags.py."""
    return flags.argparse_parser()


def parse_arguments(argv: Sequence[str] | None, ignore_unknown: bool) -> argparse.Namespace:
    """Parse the script's flags; the rest (``parsed.task_values``) set the root tasks' parameters
    (:mod:`b2box.cli.task_arguments`), or, with ``ignore_unknown``, are the script's own and left to it."""
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else list(argv)
    parsed, rest = parser.parse_known_args(arguments)
    parsed.task_values = [] if ignore_unknown else rest
    central = bool(parsed.scheduler_host or parsed.scheduler_port)
    if central and (parsed.test or parsed.dry_run):
        parser.error("--test and --dry-run cannot use a central scheduler")
    if parsed.batch_runner and not parsed.task_id:
        parser.error("--batch-runner needs --task-id")
    if parsed.workers is not None and parsed.workers < 1:
        parser.error("--workers must be at least 1")
    return parsed


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    sys.stderr.write(f"b2box: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _confirm_on_terminal(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        _fail("removal needs confirmation: run again with --yes (-y) to remove without asking")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _central_scheduler(arguments: argparse.Namespace, build_kwargs: dict[str, Any]) -> tuple[str, int] | None:
    """luigid's address when the run should show up there (flags, then process() arguments, then luigi's [core])."""
    host = arguments.scheduler_host or build_kwargs.pop("scheduler_host", None)
    port = arguments.scheduler_port or build_kwargs.pop("scheduler_port", None)
    if not (host or port):
        return None
    core = luigi.interface.core()
    return str(host or core.scheduler_host), int(port or core.scheduler_port)


def _reporters(central: tuple[str, int] | None, full_errors: bool, verbose: bool = False) -> Reporter:
    """The progress display, and luigid's view of the run when a central scheduler was named."""
    progress = ProgressReporter(full_errors=full_errors, verbose=verbose)
    if central is None:
        return progress
    luigid = CentralSchedulerReporter(*central, workflow=os.path.abspath(run_settings().state_dir), note=progress.note)
    try:
        luigid.connect()
    except CentralSchedulerUnreachable as error:
        _fail(str(error))
    return ReporterGroup(progress, luigid)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, ``kill``, ``timeout``) stops a run like Ctrl-C: running tasks are stopped and
    their outputs discarded, a batch run's jobs removed (unless ``--keep-jobs``)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_as_batch_runner(tasks: list[Any], task_id: str) -> None:
    """b2luigi's ``--batch-runner --task-id ID``: run that one task of the tree here."""
    from b2box.engine.execute import TaskFailed, execute

    graph = TaskGraph.build(tasks)
    node = graph.nodes.get(task_id)
    if node is None:
        _fail(f"task id {task_id} is not part of this workflow's task graph", EXIT_FAILED)
    set_setting(DISPATCH_IN_PLACE, True)
    try:
        execute(node.task, run_dependencies_here)
    except TaskFailed as failure:
        node.error = failure.explanation
        write_failure_log(node)
        sys.stderr.write(failure.explanation + "\n")
        raise SystemExit(EXIT_FAILED) from None


def _report_stale(result: RunResult) -> None:
    """Results that are stale but were kept (the rerun_when setting did not ask for them), named once."""
    if result.graph.kept:
        return  # (a kept graph has no stale result)
    kept = [node for node in result.graph.nodes.values() if node.stale and node.state is State.COMPLETE]
    if not kept:
        return
    sys.stderr.write(f"b2box: {len(kept)} result(s) are stale but were kept (setting rerun_when):\n")
    for node in kept[:10]:
        sys.stderr.write(f"  {node.name}: {node.stale}\n")
    if len(kept) > 10:
        sys.stderr.write(f"  ... and {len(kept) - 10} more (b2box status --why)\n")
    sys.stderr.write("  run them again with --rerun-stale, or adopt them as they are with --accept.\n")


def _report(result: RunResult) -> int:
    if result.interrupted:
        if result.left_running:
            sys.stderr.write(
                f"b2box: interrupted; {result.left_running} job(s) left running (--keep-jobs): run the same command "
                "again to re-attach to them.\n"
            )
        else:
            sys.stderr.write("b2box: interrupted; running tasks were stopped, their outputs discarded.\n")
        return EXIT_INTERRUPTED
    if result.lock_lost:
        sys.stderr.write(f"b2box: stopped: {result.lock_lost}.\n")
        return EXIT_LOCKED
    if result.outage:
        sys.stderr.write(f"b2box: stopped: {result.outage}\n")
        if result.left_running:
            sys.stderr.write(f"b2box: {result.left_running} job(s) left queued or running.\n")
        return EXIT_BATCH_UNAVAILABLE
    _report_stale(result)
    if result.success:
        return EXIT_OK
    failed = result.failed
    if failed:
        sys.stderr.write(f"b2box: {len(failed)} task(s) failed:\n")
        for node in failed[:20]:
            where = f"  log: {node.log_path}" if node.log_path else ""
            sys.stderr.write(f"  {node.name}{where}\n")
        if len(failed) > 20:
            sys.stderr.write(f"  ... and {len(failed) - 20} more\n")
        blocked: dict[str, int] = {}
        for node in result.graph.nodes.values():
            if node.blocked_by is not None:
                blocked[node.blocked_by.name] = blocked.get(node.blocked_by.name, 0) + 1
        for name, count in sorted(blocked.items(), key=lambda item: -item[1])[:20]:
            sys.stderr.write(f"  {count} task(s) could not run: they need {name}\n")
    else:
        sys.stderr.write(f"b2box: {len(result.incomplete)} task(s) were left incomplete.\n")
    return EXIT_FAILED


def process(
    task_like_elements: Any,
    show_output: bool = False,
    dry_run: bool = False,
    test: bool = False,
    batch: bool = False,
    ignore_additional_command_line_args: bool = False,
    remove: Sequence[str] = (),
    remove_only: Sequence[str] = (),
    auto_confirm: bool = False,
    keep_tasks: Sequence[str] | None = None,
    exit_on_failure: bool = True,
    argv: Sequence[str] | None = None,
    **kwargs: Any,
) -> RunResult | None:
    """Run (or inspect) the workflow ending in ``task_like_elements``.

    Keyword arguments not listed are luigi.build's (``workers``,
    ``scheduler_host`` ...). Returns the :class:`~b2box.engine.scheduler.RunResult`
    of a run when everything is complete; when a task failed or is left
    incomplete it exits with status 1 (``exit_on_failure=False`` returns the
    falsy result instead). Inspection modes (``--dry-run``, ``--show-output``,
    ``--status``, ``--remove``) always exit.
    """
    global calls
    calls += 1
    if calls == 1:
        atexit.register(_leave_the_heap_to_the_os)
    running_job = job_main.current()
    if running_job is not None:  # inside a batch job: run just that task (or the tasks of its group)
        raise SystemExit(job_main.run_current())
    tasks = list(task_like_elements) if isinstance(task_like_elements, list | tuple) else [task_like_elements]
    arguments = parse_arguments(argv, ignore_additional_command_line_args)
    try:
        if arguments.strict_settings:
            set_setting(STRICT_SETTINGS, True)
        validate_settings()
        tasks = task_arguments.apply(tasks, arguments.task_values, arguments.task)
        return _process(
            tasks,
            arguments,
            show_output,
            dry_run,
            test,
            batch,
            remove,
            remove_only,
            auto_confirm,
            keep_tasks,
            exit_on_failure,
            kwargs,
        )
    except WorkflowLocked as error:
        _fail(str(error), EXIT_LOCKED)
    except B2BoxError as error:
        _fail(str(error))


def _inspected(
    tasks: list[Any],
    arguments: argparse.Namespace,
    show_output: bool,
    dry_run: bool,
    remove: Sequence[str],
    remove_only: Sequence[str],
    auto_confirm: bool,
    keep_tasks: Sequence[str] | None,
) -> bool:
    """The commands that look at the workflow instead of running it (--show-output, --dry-run, --status, --graph,
    --provenance, --remove); whether one of them was done."""
    if show_output or arguments.show_output:
        inspection.show_outputs(tasks)
        return True
    if dry_run or arguments.dry_run:
        pending = inspection.dry_run(tasks)
        raise SystemExit(run_settings().dry_run_pending_exit if pending else EXIT_OK)
    if arguments.status:
        if arguments.tree:
            graph.tree(tasks, sys.stdout)
        else:
            inspection.status(tasks, why=arguments.why)
        return True
    if arguments.accept:
        with RunLock(run_settings().state_dir):  # it writes records: not while a run makes results
            inspection.accept(tasks)
        return True
    if arguments.graph:
        written = graph.write_picture(tasks, arguments.graph, title=os.path.basename(sys.argv[0] or "workflow"))
        print(f"wrote {written}")
        return True
    if arguments.provenance is not None:
        inspection.provenance(tasks, arguments.provenance)
        return True
    if arguments.report:
        written = report.write_report(tasks, arguments.report, arguments.json, sys.argv[0] or "workflow")
        if written != "stdout":
            print(f"wrote {written}")
        return True
    families, only = (list(arguments.remove or remove), False)
    if not families:
        families, only = (list(arguments.remove_only or remove_only), True)
    if families:
        yes = auto_confirm or arguments.yes
        inspection.remove_outputs(
            tasks,
            families,
            only=only,
            keep=list(arguments.keep or keep_tasks or []),
            confirm=None if yes else _confirm_on_terminal,
        )
        return True
    return False


def _process(
    tasks: list[Any],
    arguments: argparse.Namespace,
    show_output: bool,
    dry_run: bool,
    test: bool,
    batch: bool,
    remove: Sequence[str],
    remove_only: Sequence[str],
    auto_confirm: bool,
    keep_tasks: Sequence[str] | None,
    exit_on_failure: bool,
    build_kwargs: dict[str, Any],
) -> RunResult | None:
    registry.detect_again()  # a script may call process() again after installing or finding a batch system
    if arguments.rerun_stale:  # every difference runs a stale result again (b2box.results.staleness)
        set_setting("rerun_when", ["environment", "inputs", "code"])
    if arguments.batch_runner:
        run_as_batch_runner(tasks, arguments.task_id)
        raise SystemExit(EXIT_OK)
    if _inspected(tasks, arguments, show_output, dry_run, remove, remove_only, auto_confirm, keep_tasks):
        raise SystemExit(EXIT_OK)

    # the command line wins over the script (process(workers=...)), the script over the settings
    from_script = build_kwargs.pop("workers", None)
    is_batch = bool(batch or arguments.batch)
    workers = run_settings(arguments.workers or from_script, batch=is_batch).workers
    if is_batch:
        source = "--workers" if arguments.workers else "process(workers=...)" if from_script else "batch_workers"
        sys.stderr.write(f"b2box: up to {workers} jobs in flight at once ({source})\n")
    for ignored in ("local_scheduler", "detailed_summary", "log_level"):
        build_kwargs.pop(ignored, None)
    in_process = bool(test or arguments.test)
    if in_process:
        set_setting(DISPATCH_IN_PLACE, True)
        logging.basicConfig(level=logging.DEBUG)
        workers = 1
    reporter = _reporters(
        _central_scheduler(arguments, build_kwargs), full_errors=in_process, verbose=arguments.verbose
    )
    with RunLock(run_settings().state_dir), _sigterm_as_interrupt():
        if batch or arguments.batch:
            from b2box.batch.runner import run_batch

            result = run_batch(tasks, workers=int(workers), reporter=reporter, keep_jobs=arguments.keep_jobs)
        else:
            from b2box.batch.wrapper_runs import WrapperRuns

            scheduler = LocalScheduler(workers=int(workers), reporter=reporter, in_process=in_process,
                                       elsewhere=WrapperRuns(), keep_graph=True)  # fmt: skip
            result = scheduler.run(tasks)
    if not result.interrupted and not result.outage and not result.lock_lost:
        sys.stdout.write(luigi_lines.end_of_run(result.graph, failure_blocks=arguments.luigi_summary))
        sys.stdout.flush()
    code = _report(result)
    if code != EXIT_OK and exit_on_failure:
        raise SystemExit(code)
    return result
