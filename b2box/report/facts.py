"""What a report shows, as plain data: the run's jobs and the summaries both the page and ``--json`` give.

The reader of a run's records fills these dataclasses and the page only renders them, so the figures in the HTML
and in ``--json`` are the same numbers, computed once, here.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

STATES = ("done", "complete", "failed", "pending", "blocked")  # in the order the header shows them
FAILED = "failed"
UNKNOWN_CAUSE = "unknown cause"
UNKNOWN_ENVIRONMENT = "unknown"
TOP = 10  # jobs in the slowest and largest lists


@dataclass
class JobFacts:
    """One task's last attempt (a local task or a batch job); every figure a run may lack is optional."""

    task_id: str
    family: str
    name: str  # readable, e.g. "MyNumberTask(i=3)"
    state: str  # "done" (ran in this run), "complete" (was complete before), "failed", "pending", "blocked"
    backend: str = ""  # "local run", "local", "htcondor", "slurm", "lsf", "gbasf2", ...
    host: str = ""
    submitted: float | None = None  # epoch seconds; None for local runs
    started: float | None = None
    ended: float | None = None
    wall_s: float | None = None
    cpu_s: float | None = None
    peak_rss_bytes: int | None = None
    request_memory_bytes: int | None = None
    attempts: int = 1
    cause: str = ""  # "" or e.g. "memory", "exit code 1", "killed by signal SIGKILL", "held"
    message: str = ""  # the failure's explanation
    log_tail: str = ""  # last lines of the log
    log_path: str = ""
    environment: str = ""  # e.g. "docker b2box-analysis:1.0 sha256:abcd..." or "this machine"
    accounting: dict[str, Any] = field(default_factory=dict)  # the batch system's own figures

    @property
    def cause_label(self) -> str:
        """The cause as the failures are grouped by: a failure nobody explained still gets a group."""
        return self.cause or UNKNOWN_CAUSE

    @property
    def environment_label(self) -> str:
        """The environment as counted: tasks whose environment was not recorded count together."""
        return self.environment or UNKNOWN_ENVIRONMENT


@dataclass
class Spread:
    """Median and maximum of the jobs that have a figure (None when none has): a family's typical and worst job."""

    median: float | None
    max: float | None
    known: int  # how many jobs had the figure

    @classmethod
    def of(cls, values: list[float | None] | list[int | None]) -> Spread:
        """The spread of the known values; a missing figure is no zero."""
        known = [value for value in values if value is not None]
        if not known:
            return cls(None, None, 0)
        return cls(float(statistics.median(known)), float(max(known)), len(known))


@dataclass
class FamilySummary:
    """One task family's figures: what its jobs took, what they asked for, and why some failed."""

    family: str
    count: int
    states: dict[str, int]
    wall_s: Spread
    peak_rss_bytes: Spread
    request_memory_bytes: int | None  # the largest request of the family's jobs, where known
    failures: dict[str, int]  # cause -> jobs, most frequent first

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON types."""
        return asdict(self)


@dataclass
class RunFacts:
    """A run as the report shows it: the script, when the report was made, every job, the task graph's picture."""

    script: str
    made: float  # epoch seconds when the report was made
    jobs: list[JobFacts]
    graph_svg: str = ""  # the task graph picture (an <svg>...</svg> string), embedded as is

    def counts(self) -> dict[str, int]:
        """Jobs per state; every state the header shows is there, also with none, then any other state seen."""
        seen = Counter(job.state for job in self.jobs)
        return {state: seen.get(state, 0) for state in STATES} | {
            state: count for state, count in seen.items() if state not in STATES
        }

    def families(self) -> list[FamilySummary]:
        """Per-family figures, families in the order their first job appears (the run's order, not the alphabet)."""
        grouped: dict[str, list[JobFacts]] = {}
        for job in self.jobs:
            grouped.setdefault(job.family, []).append(job)
        return [_family_summary(family, jobs) for family, jobs in grouped.items()]

    def slowest(self, n: int = TOP) -> list[JobFacts]:
        """The n jobs with the longest wall time (jobs without one are left out)."""
        timed = [job for job in self.jobs if job.wall_s is not None]
        return sorted(timed, key=lambda job: job.wall_s or 0.0, reverse=True)[:n]

    def largest(self, n: int = TOP) -> list[JobFacts]:
        """The n jobs with the largest peak memory (jobs without one are left out)."""
        measured = [job for job in self.jobs if job.peak_rss_bytes is not None]
        return sorted(measured, key=lambda job: job.peak_rss_bytes or 0, reverse=True)[:n]

    def failures(self) -> dict[str, list[JobFacts]]:
        """Failed jobs grouped by cause, the most frequent cause first (one cause is often most of a bad run)."""
        grouped: dict[str, list[JobFacts]] = {}
        for job in self.jobs:
            if job.state == FAILED:
                grouped.setdefault(job.cause_label, []).append(job)
        return dict(sorted(grouped.items(), key=lambda item: (-len(item[1]), item[0])))

    def environments(self) -> list[tuple[str, int]]:
        """Each environment with the number of tasks it ran, most used first: a stray image shows up as a 1."""
        ran = Counter(job.environment_label for job in self.jobs if job.state in ("done", "failed", "complete"))
        return sorted(ran.items(), key=lambda item: (-item[1], item[0]))

    def to_json(self) -> dict[str, Any]:
        """What ``b2box report --json`` prints: the page's figures, for scripts and for comparing runs."""
        return {
            "script": self.script,
            "made": self.made,
            "counts": self.counts(),
            "families": {summary.family: summary.to_json() for summary in self.families()},
            "slowest": [_brief(job) for job in self.slowest()],
            "largest": [_brief(job) for job in self.largest()],
            "failures": {cause: len(jobs) for cause, jobs in self.failures().items()},
            "environments": [{"environment": label, "tasks": count} for label, count in self.environments()],
            "jobs": [_plain(asdict(job)) for job in self.jobs],
        }


def _family_summary(family: str, jobs: list[JobFacts]) -> FamilySummary:
    requests = [job.request_memory_bytes for job in jobs if job.request_memory_bytes is not None]
    causes = Counter(job.cause_label for job in jobs if job.state == FAILED)
    return FamilySummary(
        family=family,
        count=len(jobs),
        states=dict(Counter(job.state for job in jobs)),
        wall_s=Spread.of([job.wall_s for job in jobs]),
        peak_rss_bytes=Spread.of([job.peak_rss_bytes for job in jobs]),
        request_memory_bytes=max(requests) if requests else None,
        failures=dict(causes.most_common()),
    )


def _brief(job: JobFacts) -> dict[str, Any]:
    """A job in the slowest and largest lists: enough to find it in ``jobs`` and see why it is listed."""
    return {
        "task_id": job.task_id,
        "name": job.name,
        "family": job.family,
        "state": job.state,
        "wall_s": job.wall_s,
        "peak_rss_bytes": job.peak_rss_bytes,
        "request_memory_bytes": job.request_memory_bytes,
    }


def _plain(value: Any) -> Any:
    """JSON types only: a batch system's accounting may hold anything, and ``--json`` must not fail on it."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
