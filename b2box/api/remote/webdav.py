"""WebDAV storage (``https://host:port``, dCache's and XRootD's HTTP doors) through webdav4 (an httpx client).

Authentication, where the server asks for it: an X509 proxy (``X509_USER_PROXY``, setting or environment) as the
client certificate with the CA folder ``X509_CERT_DIR``, and a WLCG bearer token (``BEARER_TOKEN``, or the file
``BEARER_TOKEN_FILE``, or ``$XDG_RUNTIME_DIR/bt_u<uid>``) sent as ``Authorization: Bearer``. Neither is logged;
jobs get the token only through ``pass_env``, which keeps secrets out of job files. A tree is listed with one
``PROPFIND`` of depth infinity; a server that refuses that is listed folder by folder.
"""

from __future__ import annotations

import os
import ssl
from typing import Any

from b2box.api.remote.base import RemoteError, RemoteFileSystem, RemoteTarget
from b2box.settings.resolved import x509_credentials

_TIMEOUT = 60.0


def _library() -> Any:
    try:
        import httpx
        from webdav4.client import Client, ResourceAlreadyExists, ResourceNotFound
    except ImportError:
        raise RemoteError("WebDAVSystem needs the webdav4 package: pip install 'b2box[webdav]'") from None
    return httpx, Client, ResourceNotFound, ResourceAlreadyExists


def bearer_token() -> str:
    """The WLCG bearer token of this user, if any (found as the WLCG token discovery describes)."""
    if os.environ.get("BEARER_TOKEN"):
        return os.environ["BEARER_TOKEN"].strip()
    candidates = [os.environ.get("BEARER_TOKEN_FILE", "")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], f"bt_u{os.getuid()}"))
    for path in candidates:
        if path and os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
    return ""


def _tls_context(proxy: str, cert_dir: str) -> ssl.SSLContext | bool:
    if not proxy and not cert_dir:
        return True
    context = ssl.create_default_context(capath=cert_dir or None)
    if proxy:
        context.load_cert_chain(proxy)  # a proxy file holds the certificate chain and its key
    return context


class WebDAVSystem(RemoteFileSystem):
    """One WebDAV server: ``WebDAVSystem("https://host:port")``."""

    scheme = "https"

    def __init__(self, server_path: str) -> None:
        super().__init__(server_path)
        httpx, client_class, self._not_found, self._already_exists = _library()
        proxy, cert_dir = x509_credentials()
        headers = {}
        token = bearer_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify = _tls_context(proxy, cert_dir) if server_path.startswith("https") else True
        http = httpx.Client(headers=headers, verify=verify, timeout=_TIMEOUT)
        self._httpx = httpx
        self.client = client_class(self.server_path, http_client=http, retry=False)

    def _call(self, what: str, path: str, call: Any, *arguments: Any, **options: Any) -> Any:
        try:
            return call(*arguments, **options)
        except (self._not_found, self._already_exists):
            raise
        except (self._httpx.HTTPError, OSError) as problem:
            raise RemoteError(
                f"{what} {self.url(path)} failed: {problem}. Check that the server answers and that your proxy "
                "or token (X509_USER_PROXY, BEARER_TOKEN) allows it."
            ) from None
        except Exception as problem:  # webdav4's own errors (HTTP status of a refusal)
            raise RemoteError(f"{what} {self.url(path)} failed: {problem}") from None

    def _properties(self, path: str) -> Any:
        """The properties of ``path`` alone (``Depth: 0``: webdav4's own look-ups send none, which a server reads
        as infinity, a listing of the whole tree below, slow on a large tree and refused by many doors)."""
        answer = self._call("looking up", path, self.client.propfind, path, headers={"Depth": "0"})
        return answer.get_response_for_path(self.client.base_url.path, path).properties

    def _exists(self, path: str) -> bool:
        try:
            self._properties(path)
        except self._not_found:
            return False
        return True

    def _is_folder(self, path: str) -> bool:
        return bool(self._properties(path).collection)

    def _list_tree(self, folder: str) -> set[str]:
        try:
            answer = self._call("listing", folder, self.client.propfind, folder, headers={"Depth": "infinity"})
        except self._not_found:
            return set()
        except RemoteError:  # a server that refuses depth infinity: folder by folder
            return self._walk(folder)
        base = folder.rstrip("/")
        return {path.rstrip("/") for path in answer.responses if path.rstrip("/") != base}

    def _walk(self, folder: str) -> set[str]:
        found: set[str] = set()
        pending = [folder]
        while pending:
            for entry, is_folder in self._listdir(pending.pop()).items():
                found.add(entry.rstrip("/"))
                if is_folder:
                    pending.append(entry)
        return found

    def _listdir(self, path: str) -> dict[str, int]:
        try:
            entries = self._call("listing", path, self.client.ls, path, detail=True)
        except self._not_found:
            return {}
        listed = {}
        for entry in entries:
            name = "/" + str(entry["name"]).strip("/")
            is_folder = entry.get("type") == "directory"
            listed[name + ("/" if is_folder else "")] = int(is_folder)
        return listed

    def _upload(self, local_path: str, remote_path: str) -> None:
        self._call("uploading to", remote_path, self.client.upload_file, local_path, remote_path, overwrite=True)

    def _download(self, remote_path: str, local_path: str) -> None:
        self._call("downloading", remote_path, self.client.download_file, remote_path, local_path)

    def _move(self, source_path: str, dest_path: str) -> None:
        self._call("moving into place", dest_path, self.client.move, source_path, dest_path, overwrite=True)

    def _mkdir(self, path: str) -> None:
        parts = [part for part in path.strip("/").split("/") if part]
        for depth in range(1, len(parts) + 1):
            folder = "/" + "/".join(parts[:depth])
            if self._exists(folder):
                continue
            try:
                self._call("creating", folder, self.client.mkdir, folder)
            except (self._already_exists, RemoteError):
                if not self._exists(folder):  # not made by another task meanwhile: a real refusal
                    raise

    def _remove(self, path: str) -> None:
        try:
            self._call("removing", path, self.client.remove, path)
        except self._not_found:
            return


class WebDAVTarget(RemoteTarget):
    """A file on a WebDAV server (b2luigi's name for a RemoteTarget on a WebDAVSystem)."""
