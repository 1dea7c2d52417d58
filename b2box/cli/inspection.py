"""Looking at a workflow without running it: outputs, pending work, status, removal."""

from __future__ import annotations

import os
import sys
from collections import defaultdict
from collections.abc import Callable
from typing import Any, TextIO

import luigi.task

from b2box.engine.graph import Node, State, TaskGraph
from b2box.engine.scheduler import failed_last_time
from b2box.errors import B2BoxError
from b2box.settings.layout import get_serialized_parameters


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


def dry_run(roots: list[Any], out: TextIO = sys.stdout) -> int:
    """List what would run (calling each task's ``dry_run()`` if it has one); the count."""
    graph = TaskGraph.build(roots)
    waiting = [node for node in graph.nodes.values() if not node.state.finished]
    for family, nodes in _by_family(waiting).items():
        out.write(f"{family}\n")
        for node in nodes:
            verb = {State.MISSING: "Missing input", State.FAILED: "Broken"}.get(node.state, "Would run")
            again = " (it failed last time)" if node.state is State.PENDING and failed_last_time(node.task) else ""
            out.write(f"\t{verb} {node.task}{again}\n")
            if node.error and node.state is not State.PENDING:
                out.write(f"\t  {node.error.strip().splitlines()[-1]}\n")
            hook = getattr(node.task, "dry_run", None)
            if callable(hook) and node.state is State.PENDING:
                out.write("\tcall: dry_run()\n")
                hook()
        out.write("\n")
    if waiting:
        out.write(f"In total {len(waiting)} tasks would run or are missing.\n")
    else:
        out.write("All tasks are finished!\n")
    out.flush()
    return len(waiting)


def status(roots: list[Any], out: TextIO = sys.stdout) -> dict[str, tuple[int, int, int]]:
    """Per task family of the whole tree: how many tasks are complete, failed (last time, or broken or missing now)
    and in all; the rest is pending."""
    graph = TaskGraph.build(roots)
    table: dict[str, tuple[int, int, int]] = {}
    for family, nodes in _by_family(list(graph.nodes.values())).items():
        complete = sum(1 for node in nodes if node.state is State.COMPLETE)
        failed = sum(1 for node in nodes if node.state in (State.FAILED, State.MISSING)
                     or (node.state is State.PENDING and failed_last_time(node.task)))  # fmt: skip
        table[family] = (complete, failed, len(nodes))
    width = max([len(family) for family in table] + [len("task family")])
    out.write(f"{'task family':<{width}}  {'complete':>9}  {'failed':>7}  {'pending':>8}  {'total':>6}\n")
    totals = [0, 0, 0]
    for family, (complete, failed, total) in table.items():
        out.write(f"{family:<{width}}  {complete:>9}  {failed:>7}  {total - complete - failed:>8}  {total:>6}\n")
        totals = [totals[0] + complete, totals[1] + failed, totals[2] + total]
    complete, failed, total = totals
    out.write(f"{'all':<{width}}  {complete:>9}  {failed:>7}  {total - complete - failed:>8}  {total:>6}\n")
    out.flush()
    return table


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
        out.write("No job records yet: provenance is written by jobs run with --batch.\n")
    out.flush()
    return records
