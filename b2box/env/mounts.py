"""A bind as a container runtime's ``--mount`` value: ``type=bind,source=...,target=...``.

Its fields are CSV, so a path holding ``:``, ``,``, quotes or a line break is quoted and arrives whole; Docker's
``-v src:dst`` and Apptainer's ``--bind`` split paths on ``:`` and ``,`` instead.
"""

from __future__ import annotations

import csv


def mount_spec(source: str, target: str, target_key: str = "target") -> str:
    """One ``--mount`` value: ``type=bind,source=...,target=...``, each field CSV-quoted where it must be."""
    return ",".join(["type=bind", csv_field(f"source={source}"), csv_field(f"{target_key}={target}")])


def csv_field(field: str) -> str:
    """A field of a ``--mount`` value, quoted (quotes doubled) when it holds a comma, a quote or a line break."""
    if any(mark in field for mark in ',"\n\r'):
        return '"' + field.replace('"', '""') + '"'
    return field


def parse_mount(spec: str) -> tuple[str, str, str] | None:
    """(source, target, the target's key) of a ``--mount`` value made by :func:`mount_spec`, or None."""
    fields = next(csv.reader([spec]), [])
    if len(fields) != 3 or fields[0] != "type=bind" or not fields[1].startswith("source="):
        return None
    key, _, target = fields[2].partition("=")
    return fields[1].removeprefix("source="), target, key
