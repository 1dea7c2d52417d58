"""What the user's code read while the graph was built: the files it opened and the folders it listed.

A kept graph (:mod:`b2box.engine.kept_graph`) stands for a graph only while everything that shaped it is
unchanged. Code, settings and the environment are known places; a ``requires()`` that lists a folder of raw files,
or reads a list of runs from a file, is not. Python's audit events name both (``open``, ``os.listdir``,
``os.scandir``, which ``glob``, ``os.walk`` and ``pathlib`` use), so they are noted while a graph is built and
their modification times kept with it: a new raw file changes its folder's time, and the graph is built again.

Python's import system (and ``importlib.metadata``) lists the folders on ``sys.path``, the script's among them,
when a module is first imported while the graph is built; those listings are not the user's and are not noted
(the script's folder changes with every run: its lock folder comes and goes).

A check by name alone (``os.path.exists``) raises no audit event and is not seen: docs/speed.md says so, and the
``keep_graph`` setting turns kept graphs off for a workflow that decides its tasks that way.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_NOT_THE_USERS = (".py", ".pyc", ".so", "settings.json", "failure.log", ".b2box-identities.json")
_ALWAYS_CHANGING = ("/proc/", "/sys/", "/dev/")
_WRITING = frozenset("wax+")


@dataclass
class Reads:
    """Paths read while a graph was built: files opened for reading, folders listed."""

    files: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    thread: int = field(default_factory=threading.get_ident)  # the building thread's (a run lock's watch reads too)


_current: list[Reads] = []
_hooked = False


def _noted(event: str, args: tuple[Any, ...]) -> None:
    if not _current or _current[-1].thread != threading.get_ident():
        return
    if event == "open":
        path, mode = args[0], args[1]
        if isinstance(mode, str) and _WRITING.isdisjoint(mode) and isinstance(path, str | bytes | os.PathLike):
            _note(_current[-1].files, path)
    elif event in ("os.listdir", "os.scandir"):
        if str(sys._getframe(1).f_globals.get("__name__", "")).startswith("importlib"):
            return  # an import (or a package's metadata) looked for on sys.path: not the user's listing
        path = args[0] if args and args[0] is not None else "."
        if isinstance(path, str | bytes | os.PathLike):
            _note(_current[-1].folders, path)


def _note(into: set[str], path: str | bytes | os.PathLike[Any]) -> None:
    text = os.fsdecode(path)
    if text.endswith(_NOT_THE_USERS) or os.path.basename(text).startswith(".b2box-identity-"):
        return  # code (kept by its modules), settings (kept by name), b2box's own records
    absolute = os.path.abspath(text)
    if not absolute.startswith(_ALWAYS_CHANGING):
        into.add(absolute)


@contextlib.contextmanager
def watching() -> Iterator[Reads]:
    """Note what is read inside the block (audit hooks cannot be removed: one is added once, idle outside)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_noted)
        _hooked = True
    reads = Reads()
    _current.append(reads)
    try:
        yield reads
    finally:
        _current.remove(reads)
