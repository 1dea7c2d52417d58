"""JSON files written atomically (a reader sees the old file or the new one, never half of one) and read forgivingly."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any


def write_json(path: str, data: Any, columns: Mapping[str, Callable[[], Iterable[str]]] | None = None) -> None:
    """Write JSON atomically: readers never see half a file. ``columns`` are more keys whose values are long texts
    made of lines, each made and written in turn (a column of 100,000 lines is never beside the next in memory)."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        if not columns:
            _write_pieces(temporary, _pieces(data))
        else:
            with open(temporary, "w", encoding="utf-8") as handle:
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


_CHUNK = 1 << 20  # characters gathered before a write


def _write_pieces(path: str, pieces: Iterator[str]) -> None:
    """Write ``pieces`` to a new file ``path`` a megabyte at a time: a small file (a result's record, one per task)
    in one system call, without a text file object (which costs as much as the write itself: 30 µs of 70)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        gathered: list[str] = []
        size = 0
        for piece in pieces:
            gathered.append(piece)
            size += len(piece)
            if size >= _CHUNK:
                _write_all(descriptor, "".join(gathered).encode())
                gathered, size = [], 0
        _write_all(descriptor, "".join(gathered).encode())
    finally:
        os.close(descriptor)


def _write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


_SORTED = json.JSONEncoder(sort_keys=True)  # made once: json.dumps(..., sort_keys=True) makes one per call


def dumps(data: Any) -> str:
    """JSON with each key of an object on its own line, its value on that line: as easy to read or diff as an
    indented file, and written by json's C encoder (indenting takes its pure-Python one, ten times slower, which is
    most of what writing a job's files costs at 100,000 jobs)."""
    return "".join(_pieces(data))


_SLICE = 2_000  # a mapping longer than this is encoded a slice at a time


def _pieces(data: Any) -> Iterator[str]:
    """The text of :func:`dumps` in pieces, a long mapping a slice at a time: a result folder's index of 100,000
    entries encoded whole was 50 MB more memory at the end of a run, as one text and the encoder's pieces of it."""
    encode = _SORTED.encode
    if not isinstance(data, dict) or not data:
        yield encode(data) + "\n"
        return
    items = sorted(data.items())
    if not any(_long(value) for _, value in items):  # (a record: in one piece)
        yield "{\n" + ",\n".join(f"  {encode(str(key))}: {encode(value)}" for key, value in items) + "\n}\n"
        return
    separator = "{\n"
    for key, value in items:
        yield f"{separator}  {encode(str(key))}: "
        separator = ",\n"
        if not _long(value):
            yield encode(value)
            continue
        names = sorted(value)
        for start in range(0, len(names), _SLICE):
            part = encode({name: value[name] for name in names[start : start + _SLICE]})
            yield ("{" if start == 0 else ", ") + part[1:-1]
        yield "}"
    yield "\n}\n"


def _long(value: Any) -> bool:
    """Whether ``value`` is a mapping long enough to be encoded a slice at a time."""
    return isinstance(value, dict) and len(value) > _SLICE


def read_json(path: str) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
