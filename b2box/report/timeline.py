"""The timeline: every job that queued or ran, one row each, sorted by when it started.

Up to ``GL_FROM`` jobs each phase is a bar (``go.Bar`` with ``base=``): hovering anywhere on a bar names its job.
From there on the bars are segments of one WebGL line trace per phase (``go.Scattergl``, separated by None), which
draws tens of thousands smoothly where as many SVG bars would make the page crawl; hover finds a segment's ends.

Every text that comes from the run is HTML-escaped before plotly sees it: plotly renders a subset of HTML in
labels and hover texts, and a task named ``a<b>`` must read as such.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go

from b2box.report import units
from b2box.report.facts import JobFacts
from b2box.report.style import QUEUED_COLOUR, STILL_QUEUED_COLOUR, segment_trace, state_colour

GL_FROM = 2000  # jobs from which the timeline is drawn with WebGL
NAMED_UP_TO = 40  # jobs up to which the axis names each job
HEIGHT = 620
STILL_QUEUED = "still queued"


@dataclass
class _Spans:
    """One phase's bars, in one colour: a row, a start, an end (epoch seconds) and a hover text per job."""

    colour: str
    rows: list[int] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def add(self, row: int, start: float, end: float, text: str) -> None:
        self.rows.append(row)
        self.starts.append(start)
        self.ends.append(max(start, end))
        self.texts.append(text)


def figure(jobs: Sequence[JobFacts], made: float) -> go.Figure | None:
    """The timeline of a run; None when no job has a time (a run of results that were complete before)."""
    rows = sorted(
        (job for job in jobs if job.started is not None or job.submitted is not None),
        key=lambda job: (_first_time(job), job.name),
    )
    if not rows:
        return None
    phases = _phases(rows, made)
    gl = len(rows) >= GL_FROM
    result = go.Figure()
    for name, spans in phases.items():
        result.add_trace(_segments(spans, name, len(rows)) if gl else _bars(spans, name))
    result.update_layout(
        height=HEIGHT,
        template="plotly_white",
        barmode="overlay",
        bargap=0.15,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        hovermode="closest",
        legend={"orientation": "h", "y": 1.06, "x": 0},
        xaxis={"type": "date", "title": "time (local)"},
        yaxis=_job_axis(rows),
    )
    return result


def _phases(rows: Sequence[JobFacts], made: float) -> dict[str, _Spans]:
    """Each job's time in the queue and running, by phase; a job still queued or running lasts until the report."""
    phases = {"queued": _Spans(QUEUED_COLOUR), STILL_QUEUED: _Spans(STILL_QUEUED_COLOUR)}
    for row, job in enumerate(rows):
        text = _hover(job)
        if job.submitted is not None and job.started is not None:
            waited = f"{html.escape(job.name)}: queued {units.duration(job.started - job.submitted)}"
            phases["queued"].add(row, job.submitted, job.started, waited)
        elif job.submitted is not None:
            phases[STILL_QUEUED].add(row, job.submitted, job.ended if job.ended is not None else made, text)
        if job.started is not None:
            end = job.ended if job.ended is not None else made
            phases.setdefault(f"ran: {job.state}", _Spans(state_colour(job.state))).add(row, job.started, end, text)
    return {name: spans for name, spans in phases.items() if spans.rows}


def _bars(spans: _Spans, name: str) -> go.Bar:
    """Horizontal bars on the date axis: ``base`` where each starts, the length in milliseconds."""
    return go.Bar(
        y=spans.rows,
        base=[units.local_ms(start) for start in spans.starts],
        x=[round((end - start) * 1000) for start, end in zip(spans.starts, spans.ends, strict=True)],
        orientation="h",
        hovertext=spans.texts,
        hoverinfo="text",
        name=name,
        marker={"color": spans.colour, "line": {"width": 0}},
    )


def _segments(spans: _Spans, name: str, jobs: int) -> go.Scattergl:
    """One WebGL line trace, a segment per job separated by None; as thick as a row allows."""
    return segment_trace(
        go.Scattergl,
        ((units.local_ms(start), units.local_ms(end), row, label)
         for row, start, end, label in zip(spans.rows, spans.starts, spans.ends, spans.texts, strict=True)),
        name,
        {"color": spans.colour, "width": max(1.0, min(4.0, 0.8 * (HEIGHT - 120) / jobs))},
    )  # fmt: skip


def _first_time(job: JobFacts) -> float:
    return job.started if job.started is not None else (job.submitted or 0.0)


def _job_axis(rows: Sequence[JobFacts]) -> dict[str, object]:
    """The first job at the top; few jobs are named on the axis, many only numbered (hover names them)."""
    axis: dict[str, object] = {"autorange": "reversed", "zeroline": False, "title": "job, by start"}
    if len(rows) <= NAMED_UP_TO:
        axis |= {
            "tickvals": list(range(len(rows))),
            "ticktext": [html.escape(job.name) for job in rows],
            "title": "",
            "automargin": True,
        }
    return axis


def _hover(job: JobFacts) -> str:
    """What hovering over a job says: which job, where it ran, how long it waited and ran, why it failed."""
    where = " on ".join(part for part in (job.backend, job.host) if part)
    lines = [f"<b>{html.escape(job.name)}</b>", html.escape(f"{job.state} {where}".strip())]
    figures = []
    if job.submitted is not None and job.started is not None:
        figures.append(f"queued {units.duration(job.started - job.submitted)}")
    if job.wall_s is not None:
        figures.append(f"ran {units.duration(job.wall_s)}")
    if job.peak_rss_bytes is not None:
        figures.append(f"peak {units.memory(job.peak_rss_bytes)}")
    if figures:
        lines.append(", ".join(figures))
    if job.cause:
        lines.append(html.escape(job.cause))
    return "<br>".join(lines)
