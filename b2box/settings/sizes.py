"""Memory sizes as users write them (``"2 GB"``, ``"512MB"``, ``4096``) and as people read them (``"4.3 GB"``).

One reading for every batch system: units are binary, as HTCondor, Slurm and LSF count them (1 GB = 1024 MB), and a
bare number is megabytes, as in HTCondor's ``request_memory`` and b2luigi's settings files.
"""

from __future__ import annotations

import re

_UNITS = {"": 2**20, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


def parse_size(value: object) -> int:
    """Bytes of ``value``: a number of megabytes or a text such as ``"2 GB"``, ``"512M"``, ``"1.5GiB"``; a
    ValueError says what is accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a memory size")
    if isinstance(value, int | float):
        number, unit = float(value), ""
    else:
        text = str(value)
        found = _SIZE.fullmatch(text)
        if found is None:
            raise ValueError(f"{text!r} is not a memory size; write it like '2 GB', '512 MB' or 2048 (megabytes)")
        number, unit = float(found.group(1)), found.group(2).upper()
        if unit == "" and re.search(r"[bB]\s*$", text):
            unit = "B"
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"{value!r} is not a memory size above zero")
    return size


def megabytes(size: int) -> int:
    """Whole megabytes, rounded up (a request is never made smaller than asked)."""
    return -(-size // 2**20)


def human_size(size: float | None) -> str:
    """``"4.3 GB"``, ``"310 MB"``, ``"12 kB"``; ``"?"`` when unknown."""
    if size is None:
        return "?"
    for unit, factor in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size >= factor:
            amount = size / factor
            return f"{amount:.1f} {unit}" if amount < 10 else f"{amount:.0f} {unit}"
    return f"{int(size)} B"
