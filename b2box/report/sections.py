"""The page's HTML sections other than plots: header, job tables, failures, environments, the task graph.

Every text from the run goes through ``html.escape``: task names, messages and log tails are the user's (and their
programs') words, and a log line with ``<script>`` must show, not run. The task graph's SVG is b2box's own drawing
and is embedded as is.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from html import escape

from b2box.report import units
from b2box.report.facts import STATES, JobFacts, RunFacts

FAILURES_SHOWN = 50  # per cause; a thousand failures of one cause say nothing the first fifty do not


def section(title: str, body: str, note: str = "") -> str:
    """A titled section; the note under the title says how to read it."""
    explanation = f'<p class="note">{note}</p>' if note else ""
    return f"<section>\n<h2>{escape(title)}</h2>\n{explanation}\n{body}\n</section>"


def header(facts: RunFacts) -> str:
    """The run at a glance: which script, when, and how many jobs ended in each state."""
    badges = "".join(
        f'<span class="badge {escape(state)}{"" if count or state not in STATES else " none"}">'
        f"{count:,} {escape(state)}</span>"
        for state, count in facts.counts().items()
    )
    return (
        f"<header>\n<h1>b2box report: {escape(os.path.basename(facts.script) or facts.script)}</h1>\n"
        f'<div class="sub">{escape(facts.script)} · {len(facts.jobs):,} tasks{_span(facts.jobs)} · '
        f"made {escape(units.moment(facts.made))}</div>\n"
        f'<div class="badges">{badges}</div>\n</header>'
    )


def _span(jobs: Sequence[JobFacts]) -> str:
    """From the first submission or start to the last end: how long the run took on the clock."""
    starts = [time for job in jobs for time in (job.submitted, job.started) if time is not None]
    ends = [job.ended for job in jobs if job.ended is not None]
    if not starts or not ends or max(ends) < min(starts):
        return ""
    return f" · {units.moment(min(starts))} to {units.moment(max(ends))} ({units.duration(max(ends) - min(starts))})"


_COLUMNS: list[tuple[str, str, Callable[[JobFacts], str]]] = [
    ("task", "name", lambda job: escape(job.name)),
    ("family", "", lambda job: escape(job.family)),
    ("state", "", lambda job: escape(job.state)),
    ("where", "", lambda job: escape(" on ".join(part for part in (job.backend, job.host) if part))),
    ("wall", "num", lambda job: units.duration(job.wall_s)),
    ("CPU", "num", lambda job: units.duration(job.cpu_s)),
    ("peak memory", "num", lambda job: units.memory(job.peak_rss_bytes)),
    ("requested", "num", lambda job: units.memory(job.request_memory_bytes)),
    ("tries", "num", lambda job: str(job.attempts)),
]


def job_table(jobs: Sequence[JobFacts]) -> str:
    """A table of jobs with what they took and asked for; wall and CPU side by side show a job that waited on I/O."""
    if not jobs:
        return '<p class="note">No job has this figure.</p>'
    head = "".join(f'<th class="{kind}">{title}</th>' for title, kind, _ in _COLUMNS)
    rows = "\n".join(
        "<tr>" + "".join(f'<td class="{kind}">{cell(job)}</td>' for _, kind, cell in _COLUMNS) + "</tr>" for job in jobs
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def failures(facts: RunFacts) -> str:
    """Failed jobs grouped by cause, the most frequent first, each job's message and log tail folded away."""
    grouped = facts.failures()
    if not grouped:
        return '<p class="note">No job failed.</p>'
    parts = []
    for index, (cause, jobs) in enumerate(grouped.items()):
        shown = "\n".join(_failure(job) for job in jobs[:FAILURES_SHOWN])
        more = len(jobs) - FAILURES_SHOWN
        rest = f'<p class="note">and {more:,} more of this cause (all are in --json).</p>' if more > 0 else ""
        opened = " open" if index == 0 else ""
        parts.append(
            f'<details class="cause"{opened}>\n<summary>{escape(cause)}: {len(jobs):,} '
            f"{'job' if len(jobs) == 1 else 'jobs'}</summary>\n{shown}\n{rest}\n</details>"
        )
    return "\n".join(parts)


def _failure(job: JobFacts) -> str:
    """One failed job: its name in the summary line, then what it said, where its log is and how the log ended."""
    facts = [f"tries: {job.attempts}"] + [
        f"{label}: {escape(value)}"
        for label, value in (("where", " on ".join(p for p in (job.backend, job.host) if p)), ("env", job.environment))
        if value
    ]
    message = f"<p>{escape(job.message)}</p>" if job.message else ""
    log_path = f"<p>log: <code>{escape(job.log_path)}</code></p>" if job.log_path else ""
    tail = f"<pre>{escape(job.log_tail)}</pre>" if job.log_tail else ""
    accounting = (
        "<p>" + escape(", ".join(f"{key} {value}" for key, value in sorted(job.accounting.items()))) + "</p>"
        if job.accounting
        else ""
    )
    return (
        f'<details>\n<summary>{escape(job.name)} <span class="note">({" · ".join(facts)})</span></summary>\n'
        f"{message}{log_path}{accounting}{tail}\n</details>"
    )


def environments(facts: RunFacts) -> str:
    """Which environments (images with their digests, or this machine) ran how many tasks."""
    rows = "\n".join(
        f'<tr><td class="name"><code>{escape(label)}</code></td><td class="num">{count:,}</td></tr>'
        for label, count in facts.environments()
    )
    head = '<thead><tr><th>environment</th><th class="num">tasks</th></tr></thead>'
    return f"<table>\n{head}\n<tbody>\n{rows}\n</tbody>\n</table>"


def graph(svg: str) -> str:
    """The task graph's picture, scrollable: a graph of thousands of tasks is larger than any window."""
    return f'<div class="graph">\n{svg}\n</div>'
