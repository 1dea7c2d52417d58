"""What a task run in a local worker used: its start, wall time, CPU time and peak memory, kept with its result.

A worker lives for the whole run and runs many tasks, so the figures are differences of the worker's own counters
(``getrusage`` of the worker and of the processes it waited for). Peak memory is the worker's resident high-water
mark, reset (``/proc/self/clear_refs``) before a task only when an earlier task raised it: a task's figure is its
own, and most tasks cost two system calls.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from typing import Any

_raised_above = 0  # the worker's high-water mark after its last reset (kB)


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def start() -> Callable[[], dict[str, Any]]:
    """Start measuring a task; the returned function tells what it used so far."""
    global _raised_above
    own = resource.getrusage(resource.RUSAGE_SELF)
    if own.ru_maxrss > _raised_above:
        with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")  # the high-water mark drops to what the worker holds now
        _raised_above = _peak_kb()
    started, clock = time.time(), time.perf_counter()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    children_peak = children.ru_maxrss

    def reading() -> dict[str, Any]:
        now_own, now_children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        spent = now_own.ru_utime + now_own.ru_stime + now_children.ru_utime + now_children.ru_stime - cpu
        peak = now_own.ru_maxrss
        if now_children.ru_maxrss > children_peak:  # a process it started grew larger than any before
            peak = max(peak, now_children.ru_maxrss)
        return {
            "started": round(started, 3),
            "wall_s": round(time.perf_counter() - clock, 3),
            "cpu_s": round(spent, 3),
            "peak_rss_bytes": peak * 1024,
        }

    return reading
