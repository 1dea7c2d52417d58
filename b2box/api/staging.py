"""Atomic outputs: write under a temporary name, move into place on success.

While a task's ``run()`` executes, ``get_output_file_name(key)`` returns a
hidden path next to the final file, ``<dir>/.b2box-partial-<host>-<pid>-<n>-<name>``:
the file name keeps its extension, so tools that look at it still work.
Only when ``run()`` returns without an exception are the files renamed into
place (a rename within one folder: nothing is copied). A task that raises,
is killed or segfaults leaves no output under its real name, so it never
looks complete.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import luigi
import luigi.task

from b2box.settings.resolved import settings_of

PARTIAL_PREFIX = ".b2box-partial-"
_ATTRIBUTE = "_b2box_staging"
_counter = itertools.count()
_HOST = socket.gethostname().split(".")[0]


@dataclass
class _Staged:
    temporary: str
    final: str
    upload: Any = None  # a remote output: its target, which uploads the local temporary file on commit


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
    staged: dict[str, _Staged] = field(default_factory=dict)

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
            if parent and not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
            remove_stale_partials(parent)
            hidden = f"{PARTIAL_PREFIX}{_HOST}-{os.getpid()}-{next(_counter)}-{name}"
            temporary = os.path.join(parent, hidden) + ("/" if trailing else "")
            entry = self.staged[key] = _Staged(temporary=temporary, final=final)
        return entry.temporary

    def path_for_file(self, final: str, upload: Any = None) -> str:
        """The temporary path standing in for the output file ``final`` (the same one ``path_for`` gave for it)."""
        for entry in self.staged.values():
            if entry.final.rstrip("/") == final.rstrip("/"):
                return entry.temporary
        return self.path_for(f"file:{final}", final, upload)

    def commit(self) -> None:
        """Upload remote outputs (each appears complete or not at all), then move local ones into place."""
        for entry in sorted(self.staged.values(), key=lambda entry: entry.upload is None):
            temporary = entry.temporary.rstrip("/")
            if entry.upload is not None:
                if os.path.lexists(temporary):
                    entry.upload.commit_upload(temporary)
                _remove(os.path.dirname(temporary))
            elif os.path.lexists(temporary):
                if os.path.isdir(entry.final) and not os.path.islink(entry.final):
                    shutil.rmtree(entry.final)
                os.replace(temporary, entry.final)
        self.staged.clear()

    def discard(self) -> None:
        """Remove everything written so far: nothing of a failed run stays."""
        for entry in self.staged.values():
            _remove(os.path.dirname(entry.temporary) if entry.upload is not None else entry.temporary.rstrip("/"))
        self.staged.clear()

    def __enter__(self) -> OutputStaging:
        global _current
        setattr(self.task, _ATTRIBUTE, self)
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
            if getattr(self.task, _ATTRIBUTE, None) is self:
                delattr(self.task, _ATTRIBUTE)
            if _current is self:
                _current = None


_STALE_ELSEWHERE = 24 * 3600.0  # a partial of another host (whose processes cannot be checked) is stale after this
_swept: set[str] = set()  # folders already swept by this process


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(folder: str) -> None:
    """Remove the partial outputs that killed runs left in ``folder`` (once per folder and process).

    A partial is stale when the process that wrote it is gone: on this host its pid no longer runs; written on
    another host, when it is older than a day. A run holds its workflow's lock, so no live run of it writes here.
    """
    if folder in _swept:
        return
    _swept.add(folder)
    try:
        entries = list(os.scandir(folder or "."))
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(PARTIAL_PREFIX):
            continue
        ours = f"{PARTIAL_PREFIX}{_HOST}-"
        pid = entry.name[len(ours) :].split("-", 1)[0] if entry.name.startswith(ours) else ""
        try:
            if pid.isdigit():
                stale = int(pid) != os.getpid() and not _process_alive(int(pid))
            else:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > _STALE_ELSEWHERE
        except OSError:
            continue
        if stale:
            _remove(entry.path)


def active_staging(task: Any) -> OutputStaging | None:
    """The staging in effect for ``task``, if its ``run()`` is executing."""
    return getattr(task, _ATTRIBUTE, None)


_current: OutputStaging | None = None  # the run() executing in this process (a worker runs one task at a time)


def current_staging(task: Any = None) -> OutputStaging | None:
    """The staging of ``task``'s running ``run()``; without a task, that of the ``run()`` executing here (b2luigi's
    examples call ``target.temporary_path()`` inside ``run()`` without naming the task)."""
    return active_staging(task) if task is not None else _current


def create_output_dirs(task: Any, targets: list[Any] | None = None) -> None:
    """Create the folders of all declared outputs (b2luigi does this before ``run``)."""
    for target in targets if targets is not None else luigi.task.flatten(task.output()):
        if isinstance(target, luigi.LocalTarget):
            parent = os.path.dirname(os.path.abspath(target.path))
            if not os.path.isdir(parent):
                os.makedirs(parent, exist_ok=True)
        elif hasattr(target, "makedirs"):
            target.makedirs()
