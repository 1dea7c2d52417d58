"""``b2box report``: the run's figures as one self-contained HTML page, or as JSON for scripts.

The task graph is built once; each task's records are read (b2box.report.collect), the graph's picture is drawn
(b2box.cli.graph) and the page rendered (b2box.report.page, which needs plotly: the ``report`` extra).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from b2box.cli.graph import svg
from b2box.engine.graph import TaskGraph
from b2box.errors import B2BoxError
from b2box.report.collect import collect


def write_report(roots: list[Any], path: str, as_json: bool, script: str) -> str:
    """Write the report of the workflow of ``roots`` to ``path`` (or its JSON to stdout); what was written."""
    graph = TaskGraph.build(roots)
    if as_json:
        facts = collect(graph, script)
        json.dump(facts.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return "stdout"
    try:
        from b2box.report.page import render
    except ImportError as missing:
        raise B2BoxError(
            f"b2box report needs plotly ({missing}): pip install 'b2box[report]' (--json works without it)"
        ) from None
    facts = collect(graph, script, svg(graph, os.path.basename(script)))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render(facts))
    return os.path.abspath(path)
