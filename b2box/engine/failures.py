"""Failures grouped by cause: 1,500 tasks refused for one reason are one line, not 1,500.

A failure's cause is its task family and the first and last line of its message, compared without what differs
from job to job (a leading job id, the numbers in paths and ids: ``index=17``, ``123_4``, ``log/17/``); numbers
that stand alone (an exit code, a signal) count, so different endings stay apart. The first failure of a cause is
shown as it is; the others of that cause are counted, and shown as one line when the run says so (:meth:`flush`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from b2box.engine.graph import Node

JOB_ID = re.compile(r"^[0-9][\w.\[\]]*: ")  # "123_4: ", "12.3: ", "123[4]: ": the job a message is about
_VARYING_NUMBER = re.compile(r"(?<=[=/_\-\[.])\d+")  # numbers inside paths and ids


def summary_of(node: Node) -> str:
    """A failure's message in one line: its first line, and its last when there are more."""
    lines = [line.strip() for line in (node.error or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')} … {lines[-1]}"


def shared_summary(node: Node) -> str:
    """A failure's one-line message as the failures of its cause share it (without the job it is about)."""
    return JOB_ID.sub("", summary_of(node))


def cause_of(node: Node) -> tuple[str, str]:
    """(family, message without what differs between jobs): failures with equal causes are shown as one."""
    return node.family, _VARYING_NUMBER.sub("#", shared_summary(node))


@dataclass
class _Cause:
    nodes: list[Node] = field(default_factory=list)
    shown: int = 0  # how many of them were shown (one by one, or in a grouped line)


@dataclass
class FailureGroups:
    """This run's failures by cause, and which of them were shown already."""

    verbose: bool = False  # every failure on a line of its own (--verbose)
    causes: dict[tuple[str, str], _Cause] = field(default_factory=dict)

    def add(self, node: Node, now: bool = True) -> bool:
        """Count a failure; True when it is to be shown now, alone (``now`` and the first of its cause, or
        --verbose); else it waits for :meth:`flush`."""
        cause = self.causes.setdefault(cause_of(node), _Cause())
        cause.nodes.append(node)
        if now and (self.verbose or len(cause.nodes) == 1):
            cause.shown = len(cause.nodes)
            return True
        return False

    def flush(self, repeats: bool = True) -> list[tuple[Node, int, bool]]:
        """For each cause with failures not shown yet: (the first of them, how many, whether others of the cause
        were shown before); one by one with --verbose. Without ``repeats``, causes shown before keep waiting (a
        refusal storm over many passes is one line now and one "more" line later, not a line per pass)."""
        found = []
        for cause in self.causes.values():
            unshown = cause.nodes[cause.shown :]
            if not unshown or (cause.shown and not repeats and not self.verbose):
                continue
            earlier = cause.shown > 0
            cause.shown = len(cause.nodes)
            if self.verbose:
                found += [(node, 1, earlier) for node in unshown]
            else:
                found.append((unshown[0], len(unshown), earlier))
        return found

    def by_cause(self) -> list[str]:
        """For the summary: how many failed of each cause, when some cause failed more than once."""
        if all(len(cause.nodes) < 2 for cause in self.causes.values()):
            return []
        ordered = sorted(self.causes.items(), key=lambda item: -len(item[1].nodes))
        return [
            f"b2box:   {len(cause.nodes):>7,} of {family}: {shared_summary(cause.nodes[0])}"
            for (family, _), cause in ordered
        ]
