"""A picture of a workflow: the task graph, each node coloured by its state, as SVG (or a self-contained HTML page),
and the same as a text tree for the terminal.

Large parameter families collapse into one node (``Step x 10000``, with how many are complete, failed, pending),
so a workflow of ten thousand tasks stays readable. The layout is b2box's own (tasks in columns by their depth, a
task right of everything it needs), so no Graphviz is needed; with Graphviz's ``dot`` installed, a ``.dot`` file holds
its input instead, for its layout.
"""

from __future__ import annotations

import html
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, TextIO

from b2box.engine.graph import Node, State, TaskGraph
from b2box.engine.scheduler import failed_last_time

COLLAPSE_ABOVE = 8  # a family with more tasks than this becomes one node
COLOURS = {
    "complete": "#2e7d32",
    "pending": "#9e9e9e",
    "failed": "#c62828",
    "missing": "#ef6c00",
    "blocked": "#6a1b9a",
}
_BOX_WIDTH, _BOX_HEIGHT, _COLUMN, _ROW = 230, 46, 300, 62


def _state(node: Node) -> str:
    if node.state is State.COMPLETE or node.state is State.DONE:
        return "complete"
    if node.state is State.FAILED or (node.state is State.PENDING and failed_last_time(node.task)):
        return "failed"
    if node.state is State.MISSING:
        return "missing"
    if node.state is State.BLOCKED:
        return "blocked"
    return "pending"


@dataclass
class Box:
    """One node of the picture: a task, or a collapsed family of tasks."""

    key: str
    label: str
    states: Counter[str] = field(default_factory=Counter)
    needs: set[str] = field(default_factory=set)

    @property
    def colour(self) -> str:
        for state in ("failed", "missing", "blocked", "pending", "complete"):  # the worst state shows
            if self.states[state]:
                return COLOURS[state]
        return COLOURS["pending"]

    @property
    def detail(self) -> str:
        count = sum(self.states.values())
        if count == 1:
            return next(iter(self.states))
        return ", ".join(f"{number} {state}" for state, number in sorted(self.states.items()))


def boxes(graph: TaskGraph) -> dict[str, Box]:
    """The picture's nodes: single tasks, and families of more than COLLAPSE_ABOVE tasks as one box."""
    families = Counter(node.family for node in graph.nodes.values())
    key_of = {
        node.task_id: node.family if families[node.family] > COLLAPSE_ABOVE else node.task_id
        for node in graph.nodes.values()
    }
    found: dict[str, Box] = {}
    for node in graph.nodes.values():
        key = key_of[node.task_id]
        label = f"{node.family} x {families[node.family]}" if key == node.family else node.name
        box = found.setdefault(key, Box(key=key, label=label))
        box.states[_state(node)] += 1
        box.needs.update(key_of[dep.task_id] for dep in node.deps if key_of[dep.task_id] != key)
    return found


def _columns(found: dict[str, Box]) -> dict[str, int]:
    """Depth of each box: 0 for what needs nothing, else one more than the deepest thing it needs."""
    depth: dict[str, int] = {}

    def of(key: str, seen: frozenset[str] = frozenset()) -> int:
        if key not in depth:
            needed = [of(other, seen | {key}) for other in found[key].needs if other not in seen and other in found]
            depth[key] = 1 + max(needed, default=-1)
        return depth[key]

    for key in found:
        of(key)
    return depth


def svg(graph: TaskGraph, title: str) -> str:
    """The graph as an SVG picture."""
    found = boxes(graph)
    depth = _columns(found)
    rows: dict[int, list[str]] = defaultdict(list)
    for key in sorted(found, key=lambda key: (depth[key], found[key].label)):
        rows[depth[key]].append(key)
    place = {key: (40 + column * _COLUMN, 70 + row * _ROW) for column, keys in rows.items()
             for row, key in enumerate(keys)}  # fmt: skip
    width = max(760, 80 + (max(rows, default=0) + 1) * _COLUMN)
    height = 120 + max((len(keys) for keys in rows.values()), default=1) * _ROW
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="20" y="28" font-size="16" font-weight="bold">{html.escape(title)}</text>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
    ]
    legend_x = 20
    for state, colour in COLOURS.items():
        parts.append(f'<rect x="{legend_x + 260}" y="16" width="12" height="12" fill="{colour}"/>'
                     f'<text x="{legend_x + 276}" y="27">{state}</text>')  # fmt: skip
        legend_x += 90
    for key, box in found.items():
        x, y = place[key]
        for needed in sorted(box.needs):
            if needed in place:
                fx, fy = place[needed]
                parts.append(f'<line x1="{fx + _BOX_WIDTH}" y1="{fy + _BOX_HEIGHT / 2}" x2="{x}" '
                             f'y2="{y + _BOX_HEIGHT / 2}" stroke="#555" marker-end="url(#arrow)"/>')  # fmt: skip
    for key, box in found.items():
        x, y = place[key]
        label = box.label if len(box.label) <= 34 else box.label[:31] + "..."
        parts.append(
            f"<g><title>{html.escape(box.label)}: {html.escape(box.detail)}</title>"
            f'<rect x="{x}" y="{y}" width="{_BOX_WIDTH}" height="{_BOX_HEIGHT}" rx="6" fill="{box.colour}" '
            f'fill-opacity="0.85"/><text x="{x + 8}" y="{y + 19}" fill="white" font-weight="bold">'
            f'{html.escape(label)}</text><text x="{x + 8}" y="{y + 35}" fill="white">{html.escape(box.detail)}'
            f"</text>{_bar(box, x, y)}</g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _bar(box: Box, x: int, y: int) -> str:
    """For a family: a strip along the box's foot, split in proportion to its tasks' states."""
    total = sum(box.states.values())
    if total <= 1:
        return ""
    parts, offset = [], 0.0
    for state in COLOURS:
        share = box.states[state] / total * (_BOX_WIDTH - 12)
        if share:
            parts.append(f'<rect x="{x + 6 + offset:.1f}" y="{y + _BOX_HEIGHT - 8}" width="{share:.1f}" height="4" '
                         f'fill="{COLOURS[state]}" stroke="white" stroke-width="0.5"/>')  # fmt: skip
            offset += share
    return "".join(parts)


def dot(graph: TaskGraph) -> str:
    """The graph in Graphviz's language, for ``dot -Tsvg``."""
    found = boxes(graph)
    lines = ["digraph workflow {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontcolor=white];']
    for key, box in found.items():
        label = f"{box.label}\\n{box.detail}".replace('"', "'")
        lines.append(f'  "{key}" [label="{label}", fillcolor="{box.colour}"];')
    for key, box in found.items():
        lines += [f'  "{needed}" -> "{key}";' for needed in sorted(box.needs)]
    return "\n".join([*lines, "}"]) + "\n"


def write_picture(roots: list[Any], path: str, title: str) -> str:
    """Write the picture to ``path`` (.svg, .html or .dot, by its suffix); the path written."""
    graph = TaskGraph.build(roots)
    if path.endswith(".dot"):
        text = dot(graph)
    elif path.endswith(".html"):
        text = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
                f"<body>\n{svg(graph, title)}</body></html>\n")  # fmt: skip
    else:
        text = svg(graph, title)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return os.path.abspath(path)


def tree(roots: list[Any], out: TextIO) -> None:
    """The graph as a text tree from the requested tasks down, families of many tasks collapsed."""
    graph = TaskGraph.build(roots)
    found = boxes(graph)
    shown: set[str] = set()
    keys = {node.task_id: node for node in graph.roots}

    def draw(key: str, prefix: str, last: bool, top: bool) -> None:
        box = found[key]
        branch = "" if top else ("└─ " if last else "├─ ")
        again = " (see above)" if key in shown and box.needs else ""
        out.write(f"{prefix}{branch}{box.label}  [{box.detail}]{again}\n")
        if again:
            return
        shown.add(key)
        needs = sorted(box.needs, key=lambda other: found[other].label)
        for index, needed in enumerate(needs):
            draw(needed, prefix + ("" if top else ("   " if last else "│  ")), index == len(needs) - 1, False)

    root_keys = []
    for node in keys.values():
        key = node.family if found.get(node.family) and node.task_id not in found else node.task_id
        if key not in root_keys:
            root_keys.append(key)
    for key in root_keys:
        draw(key, "", True, True)
    out.flush()
