"""What made one output file: the task, environment, code, inputs, host and time in the record kept beside it.

``b2box provenance PATH`` reads it; the record is found by the file's name (a task's first output names its record)
or, for a task's other outputs, by the list of outputs each record in the file's folder (and the folders above it,
up to its result folder) keeps.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from b2box.jsonio import read_json
from b2box.results import records
from b2box.results.identity import digest

_LEVELS_UP = 4  # outputs in subfolders of their task's folder: how far up a record is looked for


def record_of(path: str) -> tuple[str, dict[str, Any]] | None:
    """(record file, record) of the result ``path`` belongs to; None when nothing b2box made it."""
    target = os.path.abspath(path)
    direct = records.identity_file(target)
    found = read_json(direct)
    if isinstance(found, dict) and "identity" in found:
        return direct, found
    for folder in _folders_above(os.path.dirname(target)):
        relative = os.path.relpath(target, folder)
        for name in sorted(_record_names(folder)):
            record = read_json(os.path.join(folder, name))
            if isinstance(record, dict) and relative in record.get("outputs", []):
                return os.path.join(folder, name), record
        if os.path.exists(os.path.join(folder, records.INDEX_FILE)):
            break  # the result folder: nothing above it belongs to this workflow's results
    return None


def _folders_above(folder: str) -> Iterator[str]:
    for _ in range(_LEVELS_UP + 1):
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def _record_names(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [name for name in names if name.startswith(records.PREFIX) and name.endswith(".json")]


def describe(path: str, record_file: str, record: dict[str, Any]) -> str:
    """The record in words, one aspect per line."""
    identity = record.get("identity", {})
    lines = [
        path,
        f"  made by      {record.get('name') or record.get('task', '?')}",
        f"  environment  {identity.get('environment_label') or '?'}  [digest {identity.get('environment', '?')}]",
        f"  code         {_code(identity.get('code', ''))}",
        f"  parameters   digest {identity.get('parameters', '?')}",
        f"  inputs       {_inputs(identity)}",
        f"  made         {record.get('made', '?')} on {record.get('host', '?')}",
    ]
    adopted = record.get("adopted_from")
    if adopted is not None:
        before = (f"environment {adopted.get('environment_label') or '?'}, code {_code(adopted.get('code', ''))}"
                  if adopted else "no record (made by b2luigi or an older b2box)")  # fmt: skip
        lines.append(f"  adopted      as it was (--accept); it had been made with {before}")
    lines.append(f"  record       {record_file}")
    return "\n".join(lines) + "\n"


def _code(fingerprint: str) -> str:
    return f"fingerprint {fingerprint}" if fingerprint else "not fingerprinted (its source could not be read)"


def _inputs(identity: dict[str, Any]) -> str:
    listed = identity.get("input_digests") or []
    if listed:
        return ", ".join(f"{name} [{value}]" for name, value in listed)
    return "none" if identity.get("inputs") == digest() else f"digest {identity.get('inputs', '?')}"
