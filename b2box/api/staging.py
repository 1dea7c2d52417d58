"""Atomic outputs: write under a temporary name, move into place on success.

While a task's ``run()`` executes, ``get_output_file_name(key)`` returns a
hidden path next to the final file, ``<dir>/.b2box-partial-<writer>-<n>-<name>``
(``<writer>``: 12 hex digits drawn by the writing process): the file name keeps
its extension, so tools that look at it still work. Only when ``run()`` returns
without an exception are the files renamed into place (a rename within one
folder: nothing is copied). A task that raises, is killed or segfaults leaves
no output under its real name, so it never looks complete.

A partial stands in for one output, and an output belongs to one task: so when
a task starts, every partial of its outputs was left by an earlier attempt that
died (a run holds its workflow's and its result folders' locks, so no other
run writes them), and goes. A run also removes the partials of the tasks it
stopped or saw fail before it ends (:func:`remove_partials_of`).
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import luigi
import luigi.task

from b2box.api.structure import flatten_to_dict
from b2box.jsonio import write_json
from b2box.settings.resolved import settings_of

PARTIAL_PREFIX = ".b2box-partial-"
_counter = itertools.count()
_writer: tuple[int, str] = (0, "")  # (pid, token) of this process: a forked child draws its own token
_WRITER = r"[0-9a-f]{12}"


def partial_name(name: str) -> str:
    """A hidden name beside ``name`` for a partial copy of it, unique to this process."""
    global _writer
    if _writer[0] != os.getpid():
        _writer = (os.getpid(), secrets.token_hex(6))
    return f"{PARTIAL_PREFIX}{_writer[1]}-{next(_counter)}-{name}"


class CommitRefused(Exception):
    """The task's outputs must not be committed (its run lost its lock): they are discarded."""


# Asked before every commit: why outputs must not be committed now, or empty (set by the run's lock).
commit_guard: Callable[[], str] | None = None
# What the task run now used so far (b2box.engine.meter), kept in its result's record; None: not measured
usage_meter: Callable[[], dict[str, Any]] | None = None
# A task's (identity file, record): written right after its outputs are in place (b2box.results.records).
ResultRecord = tuple[str, dict[str, Any]]


@dataclass
class _Staged:
    temporary: str
    final: str
    upload: Any = None  # a remote output: its target, which uploads the local temporary file on commit


def _move_into_place(temporary: str, final: str) -> bool:
    """Rename ``temporary`` to ``final``, replacing a folder there; False when the run wrote no ``temporary``. The
    rename is tried first: a commit of a file over nothing costs one system call, not three."""
    try:
        os.replace(temporary, final)
    except FileNotFoundError:
        if os.path.lexists(temporary):  # (the final's folder is gone)
            raise
        return False
    except OSError:  # a folder (or a file) stands where a folder (or the file) goes
        if not (os.path.isdir(final) and not os.path.islink(final)):
            raise
        shutil.rmtree(final)
        os.replace(temporary, final)
    return True


def _relative(path: str, folder: str) -> str:
    """``path`` relative to ``folder`` (most outputs are in it: no need to ask relpath)."""
    rest = path[len(folder) + 1 :]
    if path.startswith(folder + os.sep) and rest and "//" not in f"/{rest}" and "/." not in f"/{rest}":
        return rest
    return os.path.relpath(path, folder)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


@dataclass
class OutputStaging:
    """The staged outputs of one run of one task; a context manager."""

    task: Any
    opened_by_event: bool = False  # opened by luigi's START event, closed by SUCCESS/FAILURE
    record: ResultRecord | None = None  # what made the outputs: kept beside them once they are in place
    staged: dict[str, _Staged] = field(default_factory=dict)
    written: dict[str, Any] | None = None  # the record as it was written, once the outputs are committed
    fresh: frozenset[str] = frozenset()  # folders made for this run of the task: no partial can be in them
    declared: Any = None  # what the task's output() returned, when the caller asked it already
    placed: set[str] = field(default_factory=set)  # the local outputs moved into place by the commit
    _outputs: dict[str, Any] | None = None  # the task's outputs by name, asked once

    def path_for(self, key: str, final: str, upload: Any = None) -> str:
        """The temporary path that stands in for ``final`` until commit; for a remote output (``upload``, its
        target) a local file in ``scratch_dir``, uploaded on commit."""
        entry = self.staged.get(key)
        if entry is None and upload is not None:
            folder = tempfile.mkdtemp(
                prefix=f"b2box-staged-{os.getpid()}-", dir=settings_of(self.task).folders.scratch_dir
            )
            name = os.path.basename(final.rstrip("/"))
            entry = self.staged[key] = _Staged(temporary=os.path.join(folder, name), final=final, upload=upload)
        if entry is None:
            trailing = final.endswith("/")
            final = final.rstrip("/")
            parent, name = os.path.split(final)
            if parent not in self.fresh:
                if parent and not os.path.isdir(parent):
                    os.makedirs(parent, exist_ok=True)
                remove_partials(parent, name)
            hidden = partial_name(name)
            temporary = os.path.join(parent, hidden) + ("/" if trailing else "")
            entry = self.staged[key] = _Staged(temporary=temporary, final=final)
        return entry.temporary

    def output(self, key: str) -> Any:
        """The task's output named ``key``; its ``output()`` is asked once per run (a run() names several)."""
        if self._outputs is None:
            self._outputs = flatten_to_dict(self.task.output() if self.declared is None else self.declared)
        return self._outputs[key]

    def path_for_file(self, final: str, upload: Any = None) -> str:
        """The temporary path standing in for the output file ``final`` (the same one ``path_for`` gave for it)."""
        for entry in self.staged.values():
            if entry.final.rstrip("/") == final.rstrip("/"):
                return entry.temporary
        return self.path_for(f"file:{final}", final, upload)

    def commit(self) -> None:
        """Upload remote outputs (each appears complete or not at all), then move local ones into place; refused
        (nothing moves) when the run this task belongs to has lost its lock to another run."""
        refusal = commit_guard() if commit_guard is not None else ""
        if refusal:
            raise CommitRefused(refusal)
        committed = [entry.final for entry in self.staged.values() if entry.upload is None]
        for entry in sorted(self.staged.values(), key=lambda entry: entry.upload is None):
            temporary = entry.temporary.rstrip("/")
            if entry.upload is not None:
                if os.path.lexists(temporary):
                    entry.upload.commit_upload(temporary)
                _remove(os.path.dirname(temporary))
            elif _move_into_place(temporary, entry.final):
                self.placed.add(entry.final)
        self.staged.clear()
        if self.record:  # after the outputs: an identity never names outputs that are not there
            path, record = self.record
            folder = os.path.dirname(path)
            outputs = sorted(_relative(final, folder) for final in committed)
            made = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            usage = {"usage": usage_meter()} if usage_meter is not None else {}
            self.written = {**record, "made": made, "host": socket.gethostname(), "outputs": outputs, **usage}
            write_json(path, self.written)

    def discard(self) -> None:
        """Remove everything written so far: nothing of a failed run stays."""
        for entry in self.staged.values():
            _remove(os.path.dirname(entry.temporary) if entry.upload is not None else entry.temporary.rstrip("/"))
        self.staged.clear()

    def __enter__(self) -> OutputStaging:
        global _current
        _active[id(self.task)] = self
        _current = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _current
        try:
            if exc_type is None:
                try:
                    self.commit()
                except BaseException:
                    self.discard()
                    raise
            else:
                self.discard()
        finally:
            if _active.get(id(self.task)) is self:
                del _active[id(self.task)]
            if _current is self:
                _current = None


_PARTIAL = re.compile(re.escape(PARTIAL_PREFIX) + _WRITER + r"-\d+-(?P<name>.+)\Z", re.DOTALL)
_BIG_FOLDER = 64  # entries from which a folder's partials are listed once per process, not once per output
_listed: dict[str, dict[str, list[str]]] = {}  # big folders: output name -> its partials found there


def remove_partials(folder: str, name: str, fresh: bool = False) -> None:
    """Remove the partial copies of output ``name`` in ``folder``, which earlier attempts that died left; a big
    folder is listed once per process (``fresh``: look again)."""
    found = None if fresh else _listed.get(folder)
    if found is None:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            return
        found = {}
        for entry in entries:
            match = _PARTIAL.match(entry.name)
            if match:
                found.setdefault(match.group("name"), []).append(entry.path)
        if len(entries) >= _BIG_FOLDER and not fresh:
            _listed[folder] = found
    for path in found.pop(name, []):
        _remove(path)


def remove_partials_of(task: Any) -> None:
    """Remove the partial outputs of ``task`` (it failed or was stopped, and nothing of it runs any more)."""
    try:
        targets = luigi.task.flatten(task.output())
    except Exception:  # a task whose outputs cannot be named has none to clean up
        return
    for target in targets:
        if isinstance(target, luigi.LocalTarget):
            folder, name = os.path.split(os.path.abspath(target.path.rstrip("/")))
            remove_partials(folder, name, fresh=True)


# The stagings in effect, by their task's id (not an attribute of the task: a worker that runs 100,000 tasks would
# grow each one's instance dictionary for good, 40 MB in all). A staging holds its task, so no id is reused meanwhile.
_active: dict[int, OutputStaging] = {}
_current: OutputStaging | None = None  # the run() executing in this process (a worker runs one task at a time)


def active_staging(task: Any) -> OutputStaging | None:
    """The staging in effect for ``task``, if its ``run()`` is executing."""
    return _active.get(id(task))


def current_staging(task: Any = None) -> OutputStaging | None:
    """The staging of ``task``'s running ``run()``; without a task, that of the ``run()`` executing here (b2luigi's
    examples call ``target.temporary_path()`` inside ``run()`` without naming the task)."""
    return active_staging(task) if task is not None else _current


def create_output_dirs(task: Any, targets: list[Any] | None = None) -> frozenset[str]:
    """Create the folders of all declared outputs (b2luigi does this before ``run``); those that were made now."""
    made = set()
    for target in targets if targets is not None else luigi.task.flatten(task.output()):
        if isinstance(target, luigi.LocalTarget):
            parent = os.path.dirname(os.path.abspath(target.path))
            try:
                os.mkdir(parent)  # (one system call where the folder above is there, as it mostly is)
            except FileExistsError:
                continue
            except FileNotFoundError:
                os.makedirs(parent, exist_ok=True)
            made.add(parent)
        elif hasattr(target, "makedirs"):
            target.makedirs()
    return frozenset(made)
