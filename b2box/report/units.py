"""Figures as people read them: memory in MB and GB, durations in s, min and h, times of day.

MB and GB are 2**20 and 2**30 bytes, as HTCondor, Slurm and LSF count a job's memory: a request of 2048 MB shows
as 2.0 GB, the number the user wrote in the settings.
"""

from __future__ import annotations

import time

MB = 2**20
GB = 2**30


def memory(size: float | None) -> str:
    """Bytes as MB below 1 GB and as GB above: "310 MB", "2.5 GB"; a dash when unknown."""
    if size is None:
        return "-"
    if size >= GB:
        return f"{size / GB:.1f} GB"
    if size >= 10 * MB:
        return f"{size / MB:.0f} MB"
    return f"{size / MB:.1f} MB"


def memory_unit(largest: float) -> tuple[str, float]:
    """The unit a memory axis uses for values up to ``largest``: ("GB", 2**30) from 2 GB on, else MB."""
    return ("GB", float(GB)) if largest >= 2 * GB else ("MB", float(MB))


def duration(seconds: float | None) -> str:
    """A duration at the precision that matters: "4.2 s", "12 min 5 s", "3 h 20 min"; a dash when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def duration_unit(largest: float) -> tuple[str, float]:
    """The unit a duration axis uses for values up to ``largest``: s, min or h."""
    if largest >= 3 * 3600:
        return "h", 3600.0
    if largest >= 3 * 60:
        return "min", 60.0
    return "s", 1.0


def moment(epoch: float) -> str:
    """A time of day with its date, in this machine's time zone: when the report or a job happened."""
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(epoch))


def local_ms(epoch: float) -> int:
    """Epoch seconds as milliseconds on a plotly date axis, shifted so it shows this machine's local time (plotly
    shows a date axis in UTC)."""
    return round((epoch + time.localtime(epoch).tm_gmtoff) * 1000)
