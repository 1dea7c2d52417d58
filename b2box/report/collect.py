"""A run's figures read back from its records, for ``b2box report`` and ``b2box status``.

A batch job (and a task run in its container) leaves ``provenance.json`` in its log folder: where, when, with what,
its request and attempt, and what it used (``usage``, written by the process that watched it). A task run in a
local worker keeps what it used in the record beside its outputs (b2box.results.records). A failed task's reason is
its ``failure.log``, its log's tail the end of its ``stderr``. Nothing here asks a batch system anything.
"""

from __future__ import annotations

import datetime
import os
import re
import time
from typing import Any

import luigi

from b2box.engine.graph import Node, State, TaskGraph
from b2box.engine.kept_tasks import KeptGraph
from b2box.engine.scheduler import FAILURE_LOG, last_time
from b2box.job.files import PROVENANCE_FILE
from b2box.jsonio import read_json
from b2box.report.facts import FamilySummary, JobFacts, RunFacts, Spread
from b2box.results import records
from b2box.settings import layout
from b2box.settings.resolved import settings_of

_TAIL_LINES = 15
_TAIL_BYTES = 8192
_CAUSES = (
    (re.compile(r"killed for memory"), "memory"),
    (re.compile(r"killed by signal (\w+)"), "killed by signal {0}"),
    (re.compile(r"exited with code (\d+)"), "exit code {0}"),
    (re.compile(r"ended without writing"), "killed or never started"),
    (re.compile(r"did not create"), "outputs missing"),
    (re.compile(r"interrupted"), "interrupted"),
    (re.compile(r"held", re.IGNORECASE), "held"),
)


def collect(graph: TaskGraph, script: str, graph_svg: str = "") -> RunFacts:
    """Every task of ``graph`` but wrapper tasks (they run nothing), with what its records say."""
    found = {node.task_id: facts_of(node) for node in graph.nodes.values()}
    _mark_blocked(list(graph.nodes.values()), found)
    jobs = [found[node.task_id] for node in graph.nodes.values() if not isinstance(node.task, luigi.WrapperTask)]
    return RunFacts(script=script, made=time.time(), jobs=jobs, graph_svg=graph_svg)


def _mark_blocked(nodes: list[Node], found: dict[str, JobFacts]) -> None:
    """A pending task that needs a task that failed (or one so blocked) is blocked: it cannot run before that is
    fixed. Depth first without recursion (a chain of ten thousand tasks is a workflow too)."""
    settled: set[str] = set()
    for start in nodes:
        stack = [start]
        while stack:
            node = stack[-1]
            if node.task_id in settled:
                stack.pop()
                continue
            waiting = [dep for dep in node.deps if dep.task_id not in settled]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            settled.add(node.task_id)
            facts = found[node.task_id]
            if facts.state == "pending" and any(found[dep.task_id].state in ("failed", "blocked") for dep in node.deps):
                facts.state = "blocked"


def facts_of(node: Node) -> JobFacts:
    """One task's figures: from its job's provenance, else from the record kept with its result."""
    log_dir = layout.get_log_file_dir(node.task)
    facts = JobFacts(task_id=node.task_id, family=node.task.task_family, name=node.name, state="pending")
    job = read_json(os.path.join(log_dir, PROVENANCE_FILE))
    kept = records.read(node.first_output) if node.first_output else None
    if isinstance(job, dict) and _newer(job, kept):
        _from_job(facts, job)
    elif isinstance(kept, dict) and isinstance(kept.get("usage"), dict):
        _from_result(facts, kept)
    facts.state = _state(node, ran=facts.started is not None)
    if facts.state == "failed":
        facts.message = _read(os.path.join(log_dir, FAILURE_LOG)).strip() or (node.error or "").strip()
        facts.cause = facts.cause or _cause(facts.message)
        facts.log_path = os.path.join(log_dir, "stderr")
        facts.log_tail = _tail(facts.log_path)
    return facts


def _state(node: Node, ran: bool) -> str:
    if node.state in (State.COMPLETE, State.DONE):
        return "done" if ran else "complete"
    if node.state in (State.FAILED, State.MISSING) or (node.state is State.PENDING and last_time(node.task)):
        return "failed"
    return "blocked" if node.state is State.BLOCKED else "pending"


def _newer(job: dict[str, Any], kept: dict[str, Any] | None) -> bool:
    """Whether the job's record is the task's latest (a later local run may have made the result again)."""
    usage = kept.get("usage") if isinstance(kept, dict) else None
    if not isinstance(usage, dict):
        return True
    return (_epoch(job.get("start_time")) or 0) >= float(usage.get("started") or 0)


def _from_job(facts: JobFacts, job: dict[str, Any]) -> None:
    usage, image = _part(job, "usage"), _part(job, "image")
    facts.backend = str(job.get("backend") or "")
    facts.host = str(job.get("hostname") or "")
    facts.submitted = _epoch(job.get("submitted_time"))
    facts.started = _epoch(job.get("start_time"))
    facts.ended = _epoch(job.get("end_time"))
    facts.wall_s = usage.get("wall_s", job.get("duration_s"))
    facts.cpu_s = usage.get("cpu_s")
    facts.peak_rss_bytes = usage.get("peak_rss_bytes")
    facts.request_memory_bytes = job.get("request_memory_bytes")
    facts.attempts = int(job.get("attempt") or 1)
    facts.cause = "memory" if job.get("exit_cause") == "memory" else str(job.get("exit_cause") or "")
    facts.environment = _environment(image)
    facts.accounting = dict(job.get("accounting") or {})


def _from_result(facts: JobFacts, kept: dict[str, Any]) -> None:
    usage = kept["usage"]
    identity = _part(kept, "identity")
    facts.backend = "local run"
    facts.host = str(kept.get("host") or "")
    facts.started = usage.get("started")
    facts.wall_s = usage.get("wall_s")
    facts.ended = (facts.started + facts.wall_s) if facts.started is not None and facts.wall_s is not None else None
    facts.cpu_s = usage.get("cpu_s")
    facts.peak_rss_bytes = usage.get("peak_rss_bytes")
    facts.environment = str(identity.get("environment_label") or "this machine")


def _part(record: dict[str, Any], key: str) -> dict[str, Any]:
    found = record.get(key)
    return found if isinstance(found, dict) else {}


def _environment(image: dict[str, Any]) -> str:
    runtime, reference, digest = image.get("runtime"), image.get("reference"), image.get("digest")
    if not reference or runtime in (None, "none"):
        return "the host (no container)"  # (as the wrapper and the result records name it)
    return " ".join(str(part) for part in (runtime, reference, digest) if part)


def _cause(message: str) -> str:
    for pattern, label in _CAUSES:
        found = pattern.search(message)
        if found:
            return label.format(*found.groups())
    return ""


def _epoch(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-_TAIL_LINES:])


def finished_usage(graph: TaskGraph) -> list[FamilySummary]:
    """Per family, what its finished tasks' last jobs used (b2box status): read from their records, which only
    tasks that are complete are asked for."""
    if isinstance(graph, KeptGraph):
        return _kept_usage(graph)
    done = [_indexed_usage(graph, node) or facts_of(node) for node in graph.nodes.values()
            if node.state is State.COMPLETE and not isinstance(node.task, luigi.WrapperTask)]  # fmt: skip
    ran = [facts for facts in done if facts.wall_s is not None or facts.peak_rss_bytes is not None]
    return RunFacts(script="", made=0.0, jobs=ran).families()


def _kept_usage(graph: KeptGraph) -> list[FamilySummary]:
    """The same from a kept graph's index entries (each ends with the wall time and the peak memory), without a
    node or a record per task."""
    summaries = []
    for family, entries in graph.index_entries().items():
        tails = [entry.rsplit(" ", 2) for entry in entries]
        try:
            times: list[float | None] = list(map(float, [tail[1] for tail in tails]))
            peaks: list[int | None] = list(map(int, [tail[2] for tail in tails]))
        except (ValueError, IndexError):
            continue  # (status uses a kept graph only when every entry has both)
        summaries.append(FamilySummary(family=family, count=len(times), states={"complete": len(times)},
                                       wall_s=Spread.of(times), peak_rss_bytes=Spread.of(peaks),
                                       request_memory_bytes=None, failures={}))  # fmt: skip
    return summaries


def _indexed_usage(graph: TaskGraph, node: Node) -> JobFacts | None:
    """A result's figures as its folder's index keeps them (made by a local run): no file of its own is read."""
    if not node.first_output:
        return None
    found = graph.results.book.usage(settings_of(node.task).folders.result_dir, node.first_output)
    if found is None:
        return None
    facts = JobFacts(task_id=node.task_id, family=node.family, name="", state="complete")
    facts.wall_s, facts.peak_rss_bytes = found
    return facts
