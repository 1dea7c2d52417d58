"""The page's colours and CSS, in one place, so a state has the same colour in the badges and on the timeline."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

T = TypeVar("T")

STATE_COLOURS = {
    "done": "#2e9d4f",
    "complete": "#7a8a99",
    "failed": "#d1343b",
    "pending": "#e0a100",
    "blocked": "#8e5bb5",
}
OTHER_STATE_COLOUR = "#4c78a8"
QUEUED_COLOUR = "#c9d6e8"  # light: waiting is not working
STILL_QUEUED_COLOUR = "#f2d98d"  # a light "pending": queued when the report was made
REQUEST_COLOUR = "#d1343b"
FAMILY_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#eeca3b", "#9d755d", "#bab0ac")


def state_colour(state: str) -> str:
    """The colour of a state; states the report does not know share one."""
    return STATE_COLOURS.get(state, OTHER_STATE_COLOUR)


def family_colour(index: int) -> str:
    """The colour of the index-th family; they repeat after nine, where the names on the axis tell them apart."""
    return FAMILY_COLOURS[index % len(FAMILY_COLOURS)]


def badge_css() -> str:
    """One CSS class per known state for the header's badges."""
    return "\n".join(f".badge.{state} {{ background: {colour}; }}" for state, colour in STATE_COLOURS.items())


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733; margin: 0;
       background: #f5f7fa; }
main { max-width: 1320px; margin: 0 auto; padding: 16px 24px 48px; }
header { background: #1d2733; color: #fff; padding: 18px 24px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .sub { color: #b8c4d2; font-size: 13px; }
.badges { margin-top: 10px; }
.badge { display: inline-block; padding: 3px 10px; margin: 0 6px 4px 0; border-radius: 12px; color: #fff;
         font-weight: 600; font-size: 13px; background: #4c78a8; }
.badge.none { opacity: 0.35; }
section { background: #fff; border: 1px solid #dde3ea; border-radius: 6px; margin: 16px 0; padding: 12px 16px; }
section h2 { font-size: 17px; margin: 0 0 8px; }
.note { color: #5b6b7c; font-size: 13px; margin: 0 0 8px; }
.pair { display: flex; gap: 16px; flex-wrap: wrap; }
.pair > div { flex: 1 1 600px; min-width: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #edf0f4; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.name { word-break: break-all; }
details { border: 1px solid #edf0f4; border-radius: 4px; margin: 4px 0; padding: 4px 8px; }
details > summary { cursor: pointer; }
details.cause > summary { font-weight: 600; }
pre { background: #1d2733; color: #e8edf3; padding: 8px; border-radius: 4px; overflow-x: auto; font-size: 12px;
      max-height: 320px; }
.graph { overflow: auto; max-height: 900px; border: 1px solid #edf0f4; }
code { font-size: 12px; }
"""


def horizontal_segments(
    segments: Iterable[tuple[float, float, float, str]],
) -> tuple[list[float | None], list[float | None], list[str | None]]:
    """x, y and hover texts of horizontal segments ``(x from, x to, y, text)`` for one plotly line trace: each
    segment's two ends, then None, which breaks the line (one trace draws thousands of segments quickly)."""
    x: list[float | None] = []
    y: list[float | None] = []
    text: list[str | None] = []
    for start, end, height, label in segments:
        x += [start, end, None]
        y += [height, height, None]
        text += [label, label, None]
    return x, y, text


def segment_trace(trace: Callable[..., T], segments: Iterable[tuple[float, float, float, str]], name: str,
                  line: dict[str, Any]) -> T:  # fmt: skip
    """One line trace of horizontal segments (``trace``: plotly's Scatter, or Scattergl for thousands), hovering
    over a segment names it."""
    x, y, text = horizontal_segments(segments)
    return trace(x=x, y=y, hovertext=text, hoverinfo="text", mode="lines", name=name, line=line)
