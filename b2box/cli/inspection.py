"""Looking at a workflow without running it: outputs, pending work, status, removal."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TextIO

import luigi.task

from b2box.engine import kept_graph, kept_tasks
from b2box.engine.graph import Node, State, TaskGraph
from b2box.engine.scheduler import last_time
from b2box.errors import B2BoxError
from b2box.report.collect import finished_usage
from b2box.report.facts import FamilySummary
from b2box.report.units import duration
from b2box.results.staleness import ResultCheck
from b2box.settings.layout import get_serialized_parameters
from b2box.settings.sizes import human_size


def _params(task: Any) -> str:
    shown = ", ".join(f"{key}={value}" for key, value in get_serialized_parameters(task).items())
    return f"({shown})" if shown else ""


def _by_family(nodes: list[Node]) -> dict[str, list[Node]]:
    families: dict[str, list[Node]] = defaultdict(list)
    for node in nodes:
        families[node.family].append(node)
    return dict(sorted(families.items()))


def show_outputs(roots: list[Any], out: TextIO = sys.stdout) -> None:
    """Every task of the tree with its outputs, marked present (✓) or not (✗)."""
    graph = TaskGraph.build(roots)
    for family, nodes in _by_family(list(graph.nodes.values())).items():
        out.write(f"{family}\n")
        for node in nodes:
            out.write(f"  {_params(node.task) or node.task_id}\n")
            for target in luigi.task.flatten(node.task.output()):
                mark = "✓" if target.exists() else "✗"
                out.write(f"    {mark} {getattr(target, 'path', target)}\n")
    out.flush()


def graph_of(roots: list[Any], usage: bool = False) -> TaskGraph:
    """The workflow's kept graph when it still stands (b2box.engine.kept_graph) and, with ``usage``, its folders'
    indexes know what made each result used; else the graph built anew, and kept when it is complete (unless
    another shell's stands)."""
    found = kept_graph.look_up(roots)
    if found.graph is not None and (not usage or kept_tasks.usage_known(found.graph)):
        return found.graph
    graph = TaskGraph.build(roots)
    if found.graph is None and not found.elsewhere:
        kept_graph.keep(graph, roots, kept_graph.basis(graph))
    return graph


def dry_run(roots: list[Any], out: TextIO = sys.stdout) -> int:
    """List what would run (calling each task's ``dry_run()`` if it has one); the count."""
    graph = graph_of(roots)
    waiting = [node for node in graph.nodes.values() if not node.state.finished]
    for family, nodes in _by_family(waiting).items():
        out.write(f"{family}\n")
        for node in nodes:
            verb = {State.MISSING: "Missing input", State.FAILED: "Broken"}.get(node.state, "Would run")
            ended = last_time(node.task) if node.state is State.PENDING else None
            again = {"failed": " (it failed last time)", "interrupted": " (it was interrupted last time)"}.get(
                ended or "", ""
            )
            if node.stale:
                verb, again = "Would run again", f" (stale: {node.stale})"
            out.write(f"\t{verb} {node.task}{again}\n")
            if node.error and node.state is not State.PENDING:
                out.write(f"\t  {node.error.strip().splitlines()[-1]}\n")
            hook = getattr(node.task, "dry_run", None)
            if callable(hook) and node.state is State.PENDING:
                out.write("\tcall: dry_run()\n")
                hook()
        out.write("\n")
    kept = [node for node in graph.nodes.values() if node.stale and node.state is State.COMPLETE]
    for node in kept[:20]:
        out.write(f"\tStale, kept (rerun_when): {node.task} ({node.stale})\n")
    if waiting:
        out.write(f"In total {len(waiting)} tasks would run or are missing.\n")
    else:
        out.write("All tasks are finished!\n")
    out.flush()
    return len(waiting)


def status(roots: list[Any], out: TextIO = sys.stdout, why: bool = False) -> dict[str, tuple[int, int, int, int]]:
    """Per task family of the whole tree: how many tasks are complete, stale (complete, but made otherwise than a
    run would make them now, whether it runs them again or not), failed (last time, or broken or missing now) and in
    all; the rest is pending. Results without a record of what made them are counted as unknown below the table."""
    graph = graph_of(roots, usage=True)
    table, interrupted = _counted(graph)
    width = max([len(family) for family in table] + [len("task family")])
    out.write(f"{'task family':<{width}}  {'complete':>9}  {'stale':>6}  {'failed':>7}  {'pending':>8}  {'total':>6}\n")
    totals = (sum(row[0] for row in table.values()), sum(row[1] for row in table.values()),
              sum(row[2] for row in table.values()), sum(row[3] for row in table.values()))  # fmt: skip
    for family, (complete, stale, failed, total) in [*table.items(), ("all", totals)]:
        pending = total - complete - failed
        out.write(f"{family:<{width}}  {complete:>9}  {stale:>6}  {failed:>7}  {pending:>8}  {total:>6}\n")
    if interrupted:
        out.write(f"{interrupted} of the pending task(s) were interrupted last time (Ctrl-C or SIGTERM), not failed: "
                  "the next run runs them again.\n")  # fmt: skip
    unknown = 0 if graph.kept else sum(1 for node in graph.nodes.values() if node.unknown)
    if unknown:
        out.write(f"{unknown} result(s) were made without a record of what made them (by b2luigi, or an older b2box): "
                  "they count as complete; --accept records today's identity for them.\n")  # fmt: skip
    usage_table(finished_usage(graph), out)
    if why and not graph.kept:  # (a kept graph has no stale result)
        _why(graph, out)
    for problem in dict.fromkeys(graph.results.problems):
        out.write(f"could not check: {problem}\n")
    out.flush()
    return table


def _counted(graph: TaskGraph) -> tuple[dict[str, tuple[int, int, int, int]], int]:
    """Per family (complete, stale, failed, total), and how many pending tasks were interrupted last time."""
    if graph.kept:  # every task complete: counted without making a node per task
        families = sorted(graph.by_family().items())
        return {family: (counts[State.COMPLETE], 0, 0, counts[State.COMPLETE]) for family, counts in families}, 0
    table: dict[str, tuple[int, int, int, int]] = {}
    interrupted = 0
    for family, nodes in _by_family(list(graph.nodes.values())).items():
        stale = sum(1 for node in nodes if node.stale)
        complete = sum(1 for node in nodes if node.state is State.COMPLETE or node.stale)
        ended = [last_time(node.task) for node in nodes if node.state is State.PENDING and not node.stale]
        failed = sum(1 for node in nodes if node.state in (State.FAILED, State.MISSING)) + ended.count("failed")
        interrupted += ended.count("interrupted")
        table[family] = (complete, stale, failed, len(nodes))
    return table, interrupted


def usage_table(families: list[FamilySummary], out: TextIO) -> None:
    """What the finished jobs of each family used: median and maximum of run time and peak memory (nothing when
    no finished task has figures)."""
    if not families:
        return
    width = max([len(summary.family) for summary in families] + [len("task family")])
    out.write(f"\n{'task family':<{width}}  {'measured':>8}  {'run time median / max':>23}  "
              f"{'peak memory median / max':>25}  {'requested':>9}\n")  # fmt: skip
    for summary in families:
        wall, peak = summary.wall_s, summary.peak_rss_bytes
        times = f"{duration(wall.median)} / {duration(wall.max)}"
        sizes = f"{human_size(peak.median)} / {human_size(peak.max)}"
        asked = human_size(summary.request_memory_bytes) if summary.request_memory_bytes else "-"
        out.write(f"{summary.family:<{width}}  {summary.count:>8}  {times:>23}  {sizes:>25}  {asked:>9}\n")


def _why(graph: TaskGraph, out: TextIO) -> None:
    """Per family, each reason why results are stale, with how many it concerns and whether they run again."""
    reasons: dict[str, dict[tuple[str, bool], list[Node]]] = defaultdict(lambda: defaultdict(list))
    for node in graph.nodes.values():
        if node.stale:
            reasons[node.family][(node.stale, node.state is State.PENDING)].append(node)
    for family, found in sorted(reasons.items()):
        out.write(f"{family}\n")
        for (reason, reruns), nodes in found.items():
            what = "run again" if reruns else "kept (rerun_when)"
            example = nodes[0].name + (f" and {len(nodes) - 1} more" if len(nodes) > 1 else "")
            out.write(f"  {reason}: {what}: {example}\n")


def accept(roots: list[Any], out: TextIO = sys.stdout) -> int:
    """``--accept``: stale and unknown results become today's, as they are: their record gets the identity a run
    would give them now, and keeps the one they had as ``adopted_from``. Nothing runs; how many were adopted."""
    graph = TaskGraph.build(roots, ResultCheck(adopting=True))
    adopted: set[str] = set()
    for node in graph.in_order():  # inputs first: a result made from an adopted input is adopted too
        changed_input = any(dep.task_id in adopted for dep in node.deps)
        if (node.stale or node.unknown or changed_input) and node.state is State.COMPLETE and node.first_output:
            graph.results.adopt(node.task, node.first_output, [dep.task_id for dep in node.deps])
            adopted.add(node.task_id)
    graph.results.book.save()
    out.write(f"Adopted {len(adopted)} result(s) as they are; the identity they had is kept in their records.\n")
    out.flush()
    return len(adopted)


def _dependents(nodes: list[Node]) -> list[Node]:
    seen: dict[str, Node] = {}
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node.task_id not in seen:
            seen[node.task_id] = node
            stack.extend(node.dependents)
    return list(seen.values())


def _has_outputs(node: Node) -> bool:
    return any(target.exists() for target in luigi.task.flatten(node.task.output()))


def remove_outputs(
    roots: list[Any],
    families: list[str],
    only: bool = False,
    keep: list[str] | None = None,
    confirm: Callable[[str], bool] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Remove the outputs of the named task families (and of their dependents unless ``only``).

    Every chosen task's ``remove_output()`` is called, also where its outputs are gone already, as b2luigi
    does: a task may override it to clean up more than its outputs (remote copies, logs).
    ``confirm`` is asked once with the list; without it nothing is removed
    unless the caller passed a yes. Returns the number of tasks cleaned.
    """
    graph = TaskGraph.build(roots)
    known = {node.family for node in graph.nodes.values()}
    unknown = [family for family in families if family not in known]
    if unknown:
        raise B2BoxError(f"no task family {', '.join(unknown)} in this workflow; known: {', '.join(sorted(known))}")
    chosen = [node for node in graph.nodes.values() if node.family in families]
    if not only:
        chosen = _dependents(chosen)
    chosen = [node for node in chosen if node.family not in set(keep or [])]
    if not chosen:
        out.write("Nothing to remove.\n")
        return 0
    grouped = _by_family(chosen)
    listing = "\n".join(
        f"\t- {family} ({len(nodes)} tasks, {sum(_has_outputs(node) for node in nodes)} with outputs)"
        for family, nodes in grouped.items()
    )
    out.write(f"The outputs of these tasks will be removed:\n{listing}\n")
    out.flush()
    if confirm is not None and not confirm("Remove these outputs?"):
        out.write("Nothing was removed.\n")
        return 0
    for node in chosen:
        remover = getattr(node.task, "remove_output", None)
        if remover is None:
            out.write(f"\tskipping {node.task_id}: not a b2box task, no remove_output()\n")
            continue
        remover()
    out.write(f"Removed the outputs of {len(chosen)} tasks.\n")
    return len(chosen)


def provenance(roots: list[Any], families: list[str] | None = None, out: TextIO = sys.stdout) -> list[dict[str, Any]]:
    """What ran where: the provenance record of every task's last job (``provenance.json``)."""
    from b2box.job.files import PROVENANCE_FILE, read_json
    from b2box.settings.layout import get_log_file_dir

    graph = TaskGraph.build(roots)
    records = []
    for node in graph.nodes.values():
        if families and node.family not in families:
            continue
        path = os.path.join(get_log_file_dir(node.task), PROVENANCE_FILE)
        record = read_json(path)
        if record is None:
            continue
        records.append(record)
        image = record.get("image", {})
        where = image.get("reference") or "no container"
        digest = image.get("digest") or "-"
        out.write(
            f"{record.get('task_id')}\n"
            f"    ran in {image.get('runtime')} {where} ({digest}), {image.get('runtime_version', '')}\n"
            f"    on {record.get('hostname')} via {record.get('backend')} job {record.get('job_id')}, "
            f"uid {record.get('uid')}\n"
            f"    {record.get('start_time')} .. {record.get('end_time')}, exit code {record.get('exit_code')}, "
            f"b2box {record.get('b2box_version')}\n"
            f"    record: {path}\n"
        )
    if not records:
        out.write(
            "No job records yet: provenance.json is written by every task that runs as a job (each --batch job, and "
            "each task with a container image, with or without --batch); a plain task run here writes none.\n"
        )
    out.flush()
    return records
