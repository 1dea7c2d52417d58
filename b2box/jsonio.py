"""JSON files written atomically (a reader sees the old file or the new one, never half of one) and read forgivingly."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO


def write_json(path: str, data: Any, columns: Mapping[str, Callable[[], Iterable[str]]] | None = None) -> None:
    """Write JSON atomically: readers never see half a file. ``columns`` are more keys whose values are long texts
    made of lines, each made and written in turn (a column of 100,000 lines is never beside the next in memory)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            if not columns:
                _write(handle, data)
            else:
                handle.write(dumps(data).rstrip()[:-1].rstrip())  # the object without its closing brace
                for number, (key, lines) in enumerate(columns.items()):
                    comma = "," if data or number else ""
                    handle.write(f"{comma}\n  {json.dumps(key)}: {json.dumps(chr(10).join(lines()))}")
                handle.write("\n}\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


_SORTED = json.JSONEncoder(sort_keys=True)  # made once: json.dumps(..., sort_keys=True) makes one per call


def dumps(data: Any) -> str:
    """JSON with each key of an object on its own line, its value on that line: as easy to read or diff as an
    indented file, and written by json's C encoder (indenting takes its pure-Python one, ten times slower, which is
    most of what writing a job's files costs at 100,000 jobs)."""
    if not isinstance(data, dict) or not data:
        return _SORTED.encode(data) + "\n"
    lines = (f"  {_SORTED.encode(str(key))}: {_SORTED.encode(value)}" for key, value in sorted(data.items()))
    return "{\n" + ",\n".join(lines) + "\n}\n"


_SLICE = 2_000  # a mapping longer than this is encoded a slice at a time


def _write(handle: TextIO, data: Any) -> None:
    """Write what :func:`dumps` makes, a long mapping a slice at a time: a result folder's index of 100,000 entries
    encoded whole was 50 MB more memory at the end of a run, as one text and the encoder's pieces of it."""
    if not isinstance(data, dict) or not data or not any(_long(value) for value in data.values()):
        handle.write(dumps(data))
        return
    handle.write("{\n")
    for number, key in enumerate(sorted(data)):
        handle.write(f"{',' + chr(10) if number else ''}  {json.dumps(str(key))}: ")
        value = data[key]
        if not _long(value):
            handle.write(_SORTED.encode(value))
            continue
        keys = sorted(value)
        handle.write("{")
        for start in range(0, len(keys), _SLICE):
            part = _SORTED.encode({name: value[name] for name in keys[start : start + _SLICE]})
            handle.write(("" if start == 0 else ", ") + part[1:-1])
        handle.write("}")
    handle.write("\n}\n")


def _long(value: Any) -> bool:
    return isinstance(value, dict) and len(value) > _SLICE


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
