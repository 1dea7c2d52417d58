"""XRootD storage (``root://host:port``) through XRootD's own Python bindings (the ``xrootd`` package).

A recursive directory listing is one request, so a workflow's completeness check costs one round trip per
result folder. The client's connection retries are shortened (unless ``XRD_CONNECTIONWINDOW`` or
``XRD_CONNECTIONRETRY`` say otherwise), so an unreachable server is an error within seconds, naming its URL.
"""

from __future__ import annotations

import os
from typing import Any

from b2box.api.remote.base import RemoteError, RemoteFileSystem, RemoteTarget

_NOT_FOUND = 3011  # kXR_NotFound
_EXISTS = 3018  # kXR_ItExists
_TIMEOUT = 60  # seconds one request may take


def _bindings() -> Any:
    try:
        from XRootD import client
    except ImportError:
        raise RemoteError(
            "XRootDSystem needs XRootD's Python bindings: pip install 'b2box[xrootd]' (the xrootd package)"
        ) from None
    if "XRD_CONNECTIONWINDOW" not in os.environ:
        client.EnvPutInt("ConnectionWindow", 5)
    if "XRD_CONNECTIONRETRY" not in os.environ:
        client.EnvPutInt("ConnectionRetry", 2)
    return client


class XRootDSystem(RemoteFileSystem):
    """One XRootD server: ``XRootDSystem("root://host:port")``."""

    scheme = "root"

    def __init__(self, server_path: str) -> None:
        super().__init__(server_path)
        self._client_module = _bindings()
        self.client = self._client_module.FileSystem(self.server_path)

    def url(self, path: str) -> str:
        """``root://host:port//absolute/path``: XRootD's URLs carry the absolute path after a double slash."""
        return f"{self.server_path}//{path.lstrip('/')}"

    def _check(self, status: Any, what: str, path: str, tolerated: tuple[int, ...] = ()) -> bool:
        """True when ``status`` is fine; False for a tolerated error code; else a RemoteError naming the URL."""
        if status.ok:
            return True
        if status.errno in tolerated:
            return False
        raise RemoteError(
            f"{what} {self.url(path)} failed: {status.message.strip()}. Check that the server answers and that "
            "your proxy (X509_USER_PROXY) allows it."
        )

    def _exists(self, path: str) -> bool:
        status, _ = self.client.stat(path, timeout=_TIMEOUT)
        return self._check(status, "looking up", path, tolerated=(_NOT_FOUND,))

    def _is_folder(self, path: str) -> bool:
        status, info = self.client.stat(path, timeout=_TIMEOUT)
        self._check(status, "looking up", path)
        return bool(info.flags & self._client_module.flags.StatInfoFlags.IS_DIR)

    def _list_tree(self, folder: str) -> set[str]:
        flags = self._client_module.flags.DirListFlags
        status, listing = self.client.dirlist(folder, flags.STAT | flags.RECURSIVE, timeout=_TIMEOUT)
        if not self._check(status, "listing", folder, tolerated=(_NOT_FOUND,)) or listing is None:
            return set()
        base = folder.rstrip("/")
        return {f"{base}/{entry.name}" for entry in listing}

    def _listdir(self, path: str) -> dict[str, int]:
        flags = self._client_module.flags
        status, listing = self.client.dirlist(path, flags.DirListFlags.STAT, timeout=_TIMEOUT)
        self._check(status, "listing", path)
        base = path.rstrip("/")
        entries = {}
        for entry in listing:
            is_folder = bool(entry.statinfo.flags & flags.StatInfoFlags.IS_DIR)
            entries[f"{base}/{entry.name}" + ("/" if is_folder else "")] = int(is_folder)
        return entries

    def _copy(self, source: str, target: str, what: str, path: str) -> None:
        status, _ = self.client.copy(source, target, force=True)
        self._check(status, what, path)

    def _upload(self, local_path: str, remote_path: str) -> None:
        self._copy(f"file://{os.path.abspath(local_path)}", self.url(remote_path), "uploading to", remote_path)

    def _download(self, remote_path: str, local_path: str) -> None:
        self._copy(self.url(remote_path), os.path.abspath(local_path), "downloading", remote_path)

    def _move(self, source_path: str, dest_path: str) -> None:
        status, _ = self.client.mv(source_path, dest_path, timeout=_TIMEOUT)
        self._check(status, "moving into place", dest_path)

    def _mkdir(self, path: str) -> None:
        flags = self._client_module.flags.MkDirFlags
        status, _ = self.client.mkdir(path, flags.MAKEPATH, timeout=_TIMEOUT)
        self._check(status, "creating", path, tolerated=(_EXISTS,))

    def _remove(self, path: str) -> None:
        status, _ = self.client.rm(path, timeout=_TIMEOUT)
        if not status.ok and status.errno != _NOT_FOUND:
            status, _ = self.client.rmdir(path, timeout=_TIMEOUT)  # a folder (remove_dir empties it first)
            self._check(status, "removing", path, tolerated=(_NOT_FOUND,))


class XRootDTarget(RemoteTarget):
    """A file on an XRootD server (b2luigi's name for a RemoteTarget on an XRootDSystem)."""
