"""The report page: one HTML file with its CSS, plotly.js and every figure inline.

One file, because reports are mailed, attached to tickets and archived with a run, and opened where there is no
network (a batch farm's login node): nothing on the page is fetched, no CDN, no fonts, no images by address.

Why plotly draws the plots: ``plotly.io.to_html`` writes a figure as a ``<div>`` and its data, and plotly.js can be
put inline once for the whole page (here, in the head), so the page is self-contained. A timeline of thousands of
jobs is only readable with zoom and pan, which plotly's figures have without a line of our JavaScript, and its
WebGL traces (``Scattergl``) draw tens of thousands of bars smoothly. It is well kept and MIT-licensed.
"""

from __future__ import annotations

from html import escape

import plotly.io
from plotly.graph_objects import Figure
from plotly.offline import get_plotlyjs

from b2box.report import families, sections, timeline
from b2box.report.facts import RunFacts
from b2box.report.style import CSS, badge_css

# No link to plotly's site, no logo: the page works offline, and its buttons should too.
PLOT_CONFIG = {"displaylogo": False, "showSendToCloud": False}

TITLES = {
    "timeline": "Timeline",
    "families": "Run time and memory per task family",
    "slowest": "Slowest jobs",
    "largest": "Largest jobs",
    "failures": "Failures",
    "environments": "Environments",
    "graph": "Task graph",
}


def render(facts: RunFacts) -> str:
    """The whole page for a run; pure: the same facts make the same page."""
    body = "\n".join(part for part in _sections(facts) if part)
    title = escape(f"b2box report: {facts.script}")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n"
        f"<style>{CSS}\n{badge_css()}\n</style>\n"
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f"<script>{get_plotlyjs()}</script>\n"
        "</head>\n<body>\n"
        f"{sections.header(facts)}\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _sections(facts: RunFacts) -> list[str]:
    """Each section in the order people look: when things ran, what they took, what went wrong, where."""
    summaries = facts.families()
    failed = sum(len(jobs) for jobs in facts.failures().values())
    return [
        _plot_section(
            "timeline",
            timeline.figure(facts.jobs, facts.made),
            "One row per job, first started at the top: light while queued, coloured by its state while it ran. "
            "Drag to zoom, double-click to zoom out, hover for the job.",
        ),
        _plot_section(
            "families",
            families.figure(facts.jobs, summaries),
            "A box per family: median, quartiles and outliers. The dashed line is the memory the family's jobs "
            "requested, where known.",
        ),
        sections.section(TITLES["slowest"], sections.job_table(facts.slowest()), "Longest wall time first."),
        sections.section(TITLES["largest"], sections.job_table(facts.largest()), "Largest peak memory first."),
        sections.section(
            TITLES["failures"],
            sections.failures(facts),
            f"{failed:,} failed, grouped by cause; open a job for its message and the end of its log."
            if failed
            else "",
        ),
        sections.section(TITLES["environments"], sections.environments(facts), "What the tasks ran in."),
        sections.section(TITLES["graph"], sections.graph(facts.graph_svg)) if facts.graph_svg.strip() else "",
    ]


def _plot_section(key: str, figure: Figure | None, note: str) -> str:
    """A plot's section; a run without the figures for it (no times, no memory) says so instead of an empty plot."""
    if figure is None:
        return sections.section(TITLES[key], '<p class="note">No job of this run has these figures.</p>')
    div = plotly.io.to_html(figure, include_plotlyjs=False, full_html=False, config=PLOT_CONFIG, div_id=f"plot-{key}")
    return sections.section(TITLES[key], div, note)
