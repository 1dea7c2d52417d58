"""Remote storage for the remote-target tests: Debian's XRootD server, installed on the host.

The servers themselves are started by the tests (tests/storage.py), each on a free port with its own data folder:
an XRootD server from this package and a WebDAV server (wsgidav, from the test dependencies).
"""

from __future__ import annotations

import shutil

from testbed_lib.common import TestbedError, apt_install, log


def ensure_storage_server() -> str:
    """The path of the ``xrootd`` server program, installed with apt when missing."""
    if not shutil.which("xrootd"):
        apt_install(["xrootd-server", "xrootd-client"])
    found = shutil.which("xrootd")
    if not found:
        raise TestbedError("storage server", "xrootd-server is installed but no xrootd program is on PATH", [])
    log(f"  xrootd: {found}")
    return found
