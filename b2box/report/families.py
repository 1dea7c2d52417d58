"""Run time and peak memory per task family: a box per family, its memory request as a dashed line.

A family's jobs are usually alike, so their spread says more than any one job: a box far under its request line
asked for too much memory, one touching it is about to be killed, a long whisker is a job that got unlucky input or
a slow node. Family names are HTML-escaped before plotly sees them (plotly renders a subset of HTML in labels).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from b2box.report import units
from b2box.report.facts import FamilySummary, JobFacts
from b2box.report.style import REQUEST_COLOUR, family_colour, segment_trace

HEIGHT = 460


def figure(jobs: Sequence[JobFacts], summaries: Sequence[FamilySummary]) -> go.Figure | None:
    """The two plots side by side, families in the order given; None when no job has a wall time or peak memory."""
    names = [summary.family for summary in summaries]
    walls: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[float]] = {name: [] for name in names}
    for job in jobs:
        if job.wall_s is not None:
            walls[job.family].append(job.wall_s)
        if job.peak_rss_bytes is not None:
            peaks[job.family].append(job.peak_rss_bytes)
    if not any(walls.values()) and not any(peaks.values()):
        return None
    requests = {summary.family: summary.request_memory_bytes for summary in summaries}
    largest_memory = max([value for values in peaks.values() for value in values] + [r or 0 for r in requests.values()])
    memory_unit, memory_scale = units.memory_unit(largest_memory)
    time_unit, time_scale = units.duration_unit(
        max((value for values in walls.values() for value in values), default=0)
    )
    result = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("Run time per task family", "Peak memory per task family"),
        horizontal_spacing=0.1,
    )
    for index, name in enumerate(names):
        label, colour = html.escape(name), family_colour(index)
        result.add_trace(_box([value / time_scale for value in walls[name]], index, label, colour), row=1, col=1)
        result.add_trace(_box([value / memory_scale for value in peaks[name]], index, label, colour), row=1, col=2)
    known = [(index, request) for index, request in enumerate(requests.values()) if request is not None]
    if known:
        result.add_trace(_request_lines(known, names, memory_unit, memory_scale), row=1, col=2)
    ticks = {"tickvals": list(range(len(names))), "ticktext": [html.escape(name) for name in names]}
    result.update_xaxes(ticks | {"range": [-0.6, len(names) - 0.4]})
    result.update_yaxes(title_text=f"wall time ({time_unit})", rangemode="tozero", row=1, col=1)
    result.update_yaxes(title_text=f"peak memory ({memory_unit})", rangemode="tozero", row=1, col=2)
    result.update_layout(
        height=HEIGHT,
        template="plotly_white",
        margin={"l": 60, "r": 20, "t": 70, "b": 40},  # the titles clear of the plot's buttons
        legend={"orientation": "h", "y": -0.12, "x": 1, "xanchor": "right"},
        showlegend=bool(known),
    )
    return result


def _box(values: list[float], position: int, label: str, colour: str) -> go.Box:
    """One family's box: at a numbered place on the x axis, so a request line can be drawn across it."""
    return go.Box(
        y=[round(value, 3) for value in values],
        x0=position,
        name=label,
        width=0.6,
        boxpoints="outliers",
        marker={"color": colour, "size": 4},
        line={"color": colour},
        showlegend=False,
    )


def _request_lines(known: list[tuple[int, int]], names: Sequence[str], unit: str, scale: float) -> go.Scatter:
    """The requested memory of each family that has one, a dashed line across its box."""
    return segment_trace(
        go.Scatter,
        ((index - 0.4, index + 0.4, request / scale, f"{html.escape(names[index])}: requested {units.memory(request)}")
         for index, request in known),
        f"requested memory ({unit})",
        {"color": REQUEST_COLOUR, "dash": "dash", "width": 2},
    )  # fmt: skip
