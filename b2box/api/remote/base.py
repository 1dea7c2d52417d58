"""Remote files as task outputs and inputs: b2luigi's ``RemoteFileSystem``/``RemoteTarget`` API.

A :class:`RemoteFileSystem` talks one protocol to one server (``root://host:port``, ``https://host:port``); a
:class:`RemoteTarget` is one path on it. Subclasses provide the protocol's primitives (``_exists``, ``_list_tree``,
``_upload``, ``_download``, ``_move``, ``_mkdir``, ``_remove``); b2luigi's method names are built on them here.

Outputs are never visible half-written: an upload goes to a hidden name beside the final one and is renamed
into place only once complete (:meth:`RemoteFileSystem.put`). While a task runs, ``get_output_file_name()`` of a
remote output is a local file in ``scratch_dir``, uploaded that way when ``run()`` succeeds (see
:mod:`b2box.api.staging`).

Completeness checks are batched: inside :func:`listing_scope` (b2box opens one while it builds a run's task graph)
a target asks its file system whether it exists under its task's result folder, and the first such question lists
that folder's whole tree in one request; later questions are answered from the listing.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import luigi
import luigi.target

from b2box.api.staging import current_staging, partial_name
from b2box.errors import B2BoxError
from b2box.settings.resolved import settings_of


class RemoteError(B2BoxError, OSError):
    """A remote storage operation failed; the message names the URL and what to do."""


_listings: dict[tuple[str, str], frozenset[str]] | None = None  # (server, folder) -> every path below it


@contextlib.contextmanager
def listing_scope() -> Iterator[None]:
    """While open, existence checks below a result folder are answered from one listing of that folder's tree."""
    global _listings
    outer = _listings
    _listings = {} if outer is None else outer
    try:
        yield
    finally:
        _listings = outer


class RemoteFileSystem(luigi.target.FileSystem):
    """One remote server; subclasses implement the protocol primitives (see the module docstring)."""

    scheme = ""  # the URL scheme the server is reached by, for messages

    def __init__(self, server_path: str) -> None:
        self.server_path = server_path.rstrip("/")

    def __deepcopy__(self, memo: dict[int, Any]) -> RemoteFileSystem:
        """A connection to a server is shared, never copied (settings hand out deep copies of their values)."""
        return self

    # -- the protocol, for subclasses -----------------------------------------------------------------

    def _exists(self, path: str) -> bool:
        raise NotImplementedError

    def _list_tree(self, folder: str) -> set[str]:
        """Every file and folder below ``folder`` (absolute paths), empty when it does not exist."""
        raise NotImplementedError

    def _upload(self, local_path: str, remote_path: str) -> None:
        raise NotImplementedError

    def _download(self, remote_path: str, local_path: str) -> None:
        raise NotImplementedError

    def _move(self, source_path: str, dest_path: str) -> None:
        raise NotImplementedError

    def _mkdir(self, path: str) -> None:
        """Create ``path`` and its parents; nothing when it exists."""
        raise NotImplementedError

    def _remove(self, path: str) -> None:
        """Remove one file or empty folder; nothing when it does not exist."""
        raise NotImplementedError

    def _is_folder(self, path: str) -> bool:
        raise NotImplementedError

    def _listdir(self, path: str) -> dict[str, int]:
        """``{path: 1 for a folder, 0 for a file}`` of the entries directly in ``path``."""
        raise NotImplementedError

    # -- what b2box and b2luigi's API use -------------------------------------------------------------

    def url(self, path: str) -> str:
        """The URL of ``path`` on this server, for messages."""
        return f"{self.server_path}/{path.lstrip('/')}"

    def exists(self, path: str) -> bool:
        return self._exists(path)

    def exists_below(self, path: str, folder: str) -> bool:
        """Whether ``path`` exists, answered from one listing of ``folder``'s tree inside a :func:`listing_scope`."""
        if _listings is None or not folder or not _is_below(path, folder):
            return self._exists(path)
        key = (self.server_path, folder.rstrip("/"))  # tasks make file system objects of their own: one per server
        listed = _listings.get(key)
        if listed is None:
            listed = _listings[key] = frozenset(entry.rstrip("/") for entry in self._list_tree(folder))
        return path.rstrip("/") in listed

    def put(self, local_path: str, remote_path: str) -> None:
        """Upload ``local_path`` so that ``remote_path`` appears only complete: to a hidden name beside it first,
        then renamed into place. A failed upload leaves nothing under the final name."""
        folder, name = posixpath.split(remote_path.rstrip("/"))
        partial = posixpath.join(folder, partial_name(name))
        self._mkdir(folder)
        try:
            self._upload(local_path, partial)
            if self._exists(remote_path):
                if self._is_folder(remote_path):
                    raise RemoteError(
                        f"{self.url(remote_path)} is a folder, so the output cannot be put there: remove the folder "
                        "or give the output another name"
                    )
                self._remove(remote_path)
            self._move(partial, remote_path)
        except BaseException:
            with contextlib.suppress(Exception):
                self._remove(partial)
            raise

    # b2luigi's names
    def copy_file_to_remote(self, local_path: str, remote_path: str, force: bool = False) -> None:
        if not force and self._exists(remote_path):
            raise RemoteError(f"{self.url(remote_path)} exists already; pass force=True to replace it")
        self.put(local_path, remote_path)

    def copy_file_from_remote(self, remote_path: str, local_path: str, force: bool = False) -> None:
        if not force and os.path.exists(local_path):
            return  # b2luigi keeps a local file that is there already
        os.makedirs(os.path.dirname(os.path.abspath(local_path)), exist_ok=True)
        self._download(remote_path, local_path)

    def copy_dir_from_remote(self, remote_path: str, local_path: str, force: bool = False) -> None:
        for entry, is_folder in self._listdir(remote_path).items():
            if not is_folder:
                self.copy_file_from_remote(entry, os.path.join(local_path, posixpath.basename(entry)), force=force)

    def move(self, source_path: str, dest_path: str, raise_if_exists: bool = False) -> None:
        self._move(source_path, dest_path)

    def mkdir(self, path: str, parents: bool = True, raise_if_exists: bool = False) -> None:
        if raise_if_exists and self._exists(path):
            raise luigi.target.FileAlreadyExists(self.url(path))
        self._mkdir(path)

    def locate(self, path: str) -> bool:
        return self._exists(path)

    def remove(self, path: str, recursive: bool = True, skip_trash: bool = True) -> None:
        self._remove(path)

    def listdir(self, path: str, print_entries: bool = False) -> Any:
        entries = self._listdir(path)
        if print_entries:
            for entry in entries:
                print(entry)
        return entries, sorted(entries)

    def isdir(self, path: str) -> bool:
        return self._exists(path) and self._is_folder(path)

    def remove_dir(self, path: str) -> None:
        """Remove ``path`` and everything below it."""
        for entry in sorted(self._list_tree(path), key=len, reverse=True):
            self._remove(entry)
        self._remove(path)

    def rename_dont_move(self, path: str, dest: str) -> None:
        """luigi's atomic-write hook: here an upload of the local ``path`` that appears only complete."""
        self.put(path, dest)


def _is_below(path: str, folder: str) -> bool:
    return path.rstrip("/").startswith(folder.rstrip("/") + "/")


class RemoteTarget(luigi.target.FileSystemTarget):
    """A file on a remote server: ``RemoteTarget(path, file_system)``, usable wherever a task's outputs go."""

    listing_root = ""  # the result folder on the server a batched completeness check lists (set by add_to_output)

    def __init__(self, path: str, file_system: RemoteFileSystem) -> None:
        self._file_system = file_system
        super().__init__(path)

    @property
    def fs(self) -> RemoteFileSystem:
        return self._file_system

    @property
    def base_name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def url(self) -> str:
        return self.fs.url(self.path)

    def exists(self) -> bool:
        return self.fs.exists_below(self.path, self.listing_root)

    def makedirs(self) -> None:
        self.fs.mkdir(posixpath.dirname(self.path.rstrip("/")))

    def open(self, mode: str = "r") -> Any:
        raise NotImplementedError(f"{self.url}: open it with temporary_path() or get_temporary_input()")

    def get(self, path: str = "~") -> str:
        """Download into the local folder ``path``; the local file's path."""
        local = os.path.join(os.path.expanduser(path), self.base_name)
        self.fs.copy_file_from_remote(self.path, local, force=True)
        return local

    def put(self, local_path: str) -> None:
        """Upload ``local_path`` to this target (complete or not at all)."""
        self.fs.put(local_path, self.path)

    def remove(self) -> None:
        self.fs.remove(self.path)

    @contextlib.contextmanager
    def get_temporary_input(self, task: Any = None, **tmp_file_kwargs: Any) -> Iterator[str]:
        """A local copy in ``scratch_dir``, removed when the block ends."""
        with tempfile.TemporaryDirectory(dir=settings_of(task).folders.scratch_dir, **tmp_file_kwargs) as folder:
            local = os.path.join(folder, self.base_name)
            self.fs.copy_file_from_remote(self.path, local, force=True)
            yield local

    @contextlib.contextmanager
    def temporary_path(self, task: Any = None, **tmp_file_kwargs: Any) -> Iterator[str]:
        """A local path in ``scratch_dir`` to write; uploaded when the block ends without error, and inside a
        task's ``run()`` only when the whole ``run()`` succeeds."""
        staging = current_staging(task)
        if staging is not None:
            yield staging.path_for_file(self.path, upload=self)
            return
        with tempfile.TemporaryDirectory(dir=settings_of(task).folders.scratch_dir, **tmp_file_kwargs) as folder:
            local = os.path.join(folder, self.base_name)
            yield local
            self.put(local)

    def commit_upload(self, local_path: str) -> None:
        """Called by a task's staging when ``run()`` succeeded: upload what was written locally."""
        self.put(local_path)
        if os.path.isdir(local_path):
            shutil.rmtree(local_path, ignore_errors=True)
        elif os.path.exists(local_path):
            os.remove(local_path)
