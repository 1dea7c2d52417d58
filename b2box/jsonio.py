"""JSON files written atomically (a reader sees the old file or the new one, never half of one) and read forgivingly."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any


def write_json(path: str, data: Any) -> None:
    """Write JSON atomically: readers never see half a file."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(dumps(data))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def dumps(data: Any) -> str:
    """JSON with each key of an object on its own line, its value on that line: as easy to read or diff as an
    indented file, and written by json's C encoder (indenting takes its pure-Python one, ten times slower, which is
    most of what writing a job's files costs at 100,000 jobs)."""
    if not isinstance(data, dict) or not data:
        return json.dumps(data, sort_keys=True) + "\n"
    lines = (f"  {json.dumps(str(key))}: {json.dumps(value, sort_keys=True)}" for key, value in sorted(data.items()))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
