"""The lines luigi and b2luigi print at the end of a run, which scripts and CI pipelines grep for.

b2box has its own summary (on stderr), which says each failure once. luigi's progress line is printed on stdout
beside it, worded exactly as luigi 3 and b2luigi 1.3 word it, so that a pipeline that checks for ``This progress
looks :)`` keeps working after the switch to b2box; b2luigi's ``Failed task ... with task_id and parameters:``
blocks repeat what b2box's summary says, and are printed only when asked for (``--luigi-summary``).
"""

from __future__ import annotations

import os
from typing import Any

from b2box.engine.graph import Node, State, TaskGraph
from b2box.settings.layout import get_log_file_dir

# luigi.execution_summary.LuigiStatusCode's wording
_SUCCESS = (":)", "there were no failed tasks or missing dependencies")
_FAILED = (":(", "there were failed tasks")
_MISSING_EXTERNAL = (":|", "there were missing external dependencies")


def progress_line(graph: TaskGraph) -> str:
    """luigi's one-line summary of a run."""
    states = {state for state, count in graph.counts().items() if count}
    face, reason = _FAILED if State.FAILED in states else _MISSING_EXTERNAL if State.MISSING in states else _SUCCESS
    return f"This progress looks {face} because {reason}"


def _parameters(task: Any) -> dict[str, str]:
    try:
        return dict(task.to_str_params())
    except Exception:  # parameters that cannot be serialized: the task id still names the task
        return {}


def failure_block(node: Node) -> str:
    """b2luigi's explanation of a failed task: its id, parameters and log folder."""
    task = node.task
    lines = [f"Failed task {task} with task_id and parameters:", f"\ttask_id={node.task_id}"]
    lines += [f"\t{key}={value}" for key, value in _parameters(task).items()]
    lines += ["Please have a look into the log files in:", os.path.abspath(get_log_file_dir(task))]
    return "\n".join(lines)


BLOCKS_SHOWN = 100  # failure blocks printed at most; b2box's summary on stderr counts the rest by cause


def end_of_run(graph: TaskGraph, failure_blocks: bool = False) -> str:
    """What is printed at the end of a run: the progress line, after a block per failed task with
    ``failure_blocks`` (the first :data:`BLOCKS_SHOWN`: 100,000 failures would be 700,000 lines and seconds of work
    after the last job)."""
    failed = [node for node in graph.nodes.values() if node.state is State.FAILED] if failure_blocks else []
    blocks = [failure_block(node) for node in failed[:BLOCKS_SHOWN]]
    if len(failed) > BLOCKS_SHOWN:
        blocks.append(
            f"... and {len(failed) - BLOCKS_SHOWN:,} more failed tasks (b2box's summary counts them by cause)"
        )
    return "\n\n".join([*blocks, progress_line(graph)]) + "\n"
