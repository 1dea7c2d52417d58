"""Where a result's identity is kept: beside its outputs, and, for reading many at once, in its result folder's index.

A task's identity is written into ``<folder>/.b2box-identity-<first output>.json`` beside its first output, right
after its outputs were moved into place (so a killed job leaves none, and an identity never names outputs that are
missing); it moves with the outputs. Each result folder also keeps ``.b2box-identities.json``, the four aspect
digests of each of its results in one file, which the run that holds the folder's lock rewrites when it ends: a run
checks a hundred thousand results by reading one file, not a hundred thousand, and reads a result's own file only
when it differs (to say how). While a run that makes results is under way (or after one was killed),
``.b2box-identities.dirty`` says the index may be behind: then each result's own file is read, and the index is
written anew at the end.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from b2box.jsonio import read_json, write_json

PREFIX = ".b2box-identity-"
INDEX_FILE = ".b2box-identities.json"
DIRTY_FILE = ".b2box-identities.dirty"
USAGE_SPACES = 5  # an index entry with what its run used: four digests, wall time, peak memory
INDEX_VERSION = 3  # 3: an entry may end with what the task run that made it used (2: the four digests alone)
_READABLE_VERSIONS = (2, 3)

Aspects = tuple[str, str, str, str]  # the digests of (environment, code, parameters, inputs)
Usage = tuple[float, int]  # wall time (s) and peak memory (bytes) of the task run that made a result


def usage_in(record: dict[str, Any] | None) -> Usage | None:
    """What a record says the task run that made its result used (None: it was not measured there)."""
    usage = record.get("usage") if isinstance(record, dict) else None
    if not isinstance(usage, dict):
        return None
    wall, peak = usage.get("wall_s"), usage.get("peak_rss_bytes")
    if not isinstance(wall, int | float) or not isinstance(peak, int):
        return None
    return float(wall), peak


def identity_file(first_output: str) -> str:
    """Where the identity of the task whose first local output is ``first_output`` is kept."""
    folder, name = os.path.split(os.path.abspath(first_output.rstrip("/")))
    return os.path.join(folder, f"{PREFIX}{name}.json")


def first_output_of(path: str) -> str:
    """The name of the first output whose identity is kept in ``path`` (the inverse of :func:`identity_file`)."""
    return os.path.basename(path)[len(PREFIX) : -len(".json")]


def read(first_output: str) -> dict[str, Any] | None:
    """The whole record kept beside a result (None: it has none, or it cannot be read)."""
    found = read_json(identity_file(first_output))
    return found if isinstance(found, dict) else None


def write(path: str, record: dict[str, Any]) -> None:
    """Keep a result's identity record (atomically: a reader sees the old one or the new one)."""
    write_json(path, record)


def aspects_of(record: dict[str, Any] | None) -> Aspects | None:
    """The four aspect digests of a record (None when it has no readable identity)."""
    identity = record.get("identity") if isinstance(record, dict) else None
    if not isinstance(identity, dict):
        return None
    try:
        found = tuple(str(identity[aspect]) for aspect in ("environment", "code", "parameters", "inputs"))
    except KeyError:
        return None
    return found  # type: ignore[return-value]


@dataclass
class _Index:
    """One result folder's index as this run knows it: first output (relative to the folder) -> its aspects, joined
    by spaces, then, where known, the wall time and peak memory of the local task run that made it (one string per
    result keeps a hundred thousand of them small; ``b2box status`` reads its usage table from here)."""

    entries: dict[str, str]
    trusted: bool  # the index is up to date (no run that makes results was under way or killed)
    changed: bool = False
    ours: bool = False  # this run makes results here (and holds the folder's lock): it says when the index is whole


@dataclass
class ResultBook:
    """The identities of a run's results: read in bulk from each result folder's index, and those made (or adopted)
    in this run, which :meth:`save` writes back into the indexes."""

    _indexes: dict[str, _Index] = field(default_factory=dict)

    def aspects(self, result_dir: str, first_output: str) -> Aspects | None:
        """The aspect digests recorded for the result whose first output is ``first_output`` (None: it has none)."""
        index = self._index(result_dir)
        key = _key(result_dir, first_output)
        found = index.entries.get(key) if index.trusted else None
        if found is None:
            aspects = aspects_of(read(first_output))
            if aspects is None:
                return None
            index.entries[key] = found = " ".join(aspects)
            index.changed = True
        parts = found.split(" ")
        return (parts[0], parts[1], parts[2], parts[3]) if len(parts) in (4, 6) else None

    def entries(self, result_dir: str) -> dict[str, str] | None:
        """The folder's index (first output relative to the folder -> its entry) when it is up to date, else None."""
        index = self._index(result_dir)
        return index.entries if index.trusted else None

    def usage(self, result_dir: str, first_output: str) -> Usage | None:
        """(wall time in s, peak memory in bytes) of the local task run that made the result, as its folder's index
        knows it (no file is read: None when the index does not say)."""
        index = self._index(result_dir)
        found = index.entries.get(_key(result_dir, first_output)) if index.trusted else None
        parts = found.split(" ") if found else ()
        if len(parts) != 6:
            return None
        try:
            return float(parts[4]), int(parts[5])
        except ValueError:
            return None

    def note(self, result_dir: str, first_output: str, aspects: Aspects, usage: Usage | None = None) -> None:
        """A result made or adopted in this run (its file is written by whoever committed it), with what the run
        that made it used where that is known."""
        index = self._index(result_dir)
        entry = " ".join(aspects)
        if usage is not None:
            entry += f" {usage[0]:g} {usage[1]:d}"
        index.entries[_key(result_dir, first_output)] = entry
        index.changed = True

    def mark_dirty(self, result_dirs: Iterable[str]) -> None:
        """Results are about to be made in these folders: their indexes may fall behind until :meth:`save`."""
        for folder in result_dirs:
            self._index(folder).ours = True
            with contextlib.suppress(OSError):
                os.makedirs(folder, exist_ok=True)
                with open(os.path.join(folder, DIRTY_FILE), "w", encoding="ascii") as handle:
                    handle.write(str(os.getpid()))

    def save(self, settled: bool = True) -> None:
        """Write the indexes this run changed (or read anew); where it made the results (under the folder's lock)
        and no job of it can still commit (``settled``: none was left running), say they are up to date again."""
        for folder, index in self._indexes.items():
            whole = index.trusted  # an index that was up to date is still, unless this run made results (below)
            if index.changed:
                try:
                    write_json(os.path.join(folder, INDEX_FILE), {"version": INDEX_VERSION, "results": index.entries})
                except OSError:
                    continue
                whole = index.trusted = True  # everything read or made in this run is in it now
                index.changed = False
            if index.ours and whole and settled:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, DIRTY_FILE))

    def _index(self, result_dir: str) -> _Index:
        index = self._indexes.get(result_dir)
        if index is None:
            dirty = os.path.exists(os.path.join(result_dir, DIRTY_FILE))
            data = None if dirty else read_json(os.path.join(result_dir, INDEX_FILE))
            usable = isinstance(data, dict) and data.get("version") in _READABLE_VERSIONS
            entries = data.get("results") if usable else None  # type: ignore[union-attr]
            index = _Index(entries=entries if isinstance(entries, dict) else {}, trusted=not dirty)
            self._indexes[result_dir] = index
        return index


def _key(result_dir: str, first_output: str) -> str:
    """``first_output`` relative to ``result_dir`` (by its prefix: this runs once per result of a run)."""
    prefix = result_dir.rstrip("/") + "/"
    if first_output.startswith(prefix):
        return first_output[len(prefix) :]
    return os.path.relpath(os.path.abspath(first_output), os.path.abspath(result_dir))
