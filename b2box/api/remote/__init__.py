"""Remote outputs and inputs on XRootD and WebDAV storage, with b2luigi's names (see :mod:`.base`)."""

from b2box.api.remote.base import RemoteError, RemoteFileSystem, RemoteTarget, listing_scope
from b2box.api.remote.webdav import WebDAVSystem, WebDAVTarget
from b2box.api.remote.xrootd import XRootDSystem, XRootDTarget

__all__ = [
    "RemoteError",
    "RemoteFileSystem",
    "RemoteTarget",
    "WebDAVSystem",
    "WebDAVTarget",
    "XRootDSystem",
    "XRootDTarget",
    "listing_scope",
]
