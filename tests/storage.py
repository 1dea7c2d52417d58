"""Real storage servers for the remote-target tests: XRootD (Debian's xrootd-server) and WebDAV (wsgidav).

Each runs as a child process on a free port, serving a fresh folder under /var/tmp, and is stopped at the end of
the session. The XRootD server refuses to run as root, so as root it runs as ``nobody`` (its folder is then
world-writable). It listens on every interface of this machine, so a job in a Docker container reaches it through
the Docker bridge's address; the WebDAV server listens on the address it is given.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_START_TIMEOUT = 30.0


@dataclass
class Server:
    """A running storage server."""

    scheme: str  # root or http
    host: str
    port: int
    data: Path  # the folder it serves: its "/" is this folder
    log: Path

    def url(self, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"storage server on port {port} did not start:\n{tail}") from None
            time.sleep(0.1)


def _folder(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/var/tmp"))
    (folder / "data").mkdir()
    for path in (folder, folder / "data"):
        path.chmod(0o777)  # the XRootD server runs as nobody when the tests run as root
    return folder


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def xrootd_server() -> Iterator[Server]:
    """An XRootD server with write access for everybody, on a free port."""
    program = shutil.which("xrootd")
    assert program, "the remote marker brings the XRootD server (ci/testbed.py); it is not on PATH"
    folder, port = _folder("b2box-xrootd-"), free_port()
    config = folder / "xrootd.cfg"
    config.write_text(
        f"all.export /\noss.localroot {folder / 'data'}\nxrd.port {port}\n"
        f"all.adminpath {folder / 'admin'}\nall.pidpath {folder / 'run'}\n"
    )
    log = folder / "xrootd.log"
    as_nobody = ["-R", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen([program, *as_nobody, "-c", str(config), "-l", str(log)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for(port, process, log)
        yield Server("root", "127.0.0.1", port, folder / "data", log)
    finally:
        _stop(process)
        shutil.rmtree(folder, ignore_errors=True)


def start_webdav(host: str = "127.0.0.1") -> tuple[Server, subprocess.Popen[bytes]]:
    """A WebDAV server (wsgidav) for anonymous reads and writes, on a free port of ``host``."""
    folder, port = _folder("b2box-webdav-"), free_port()
    log = folder / "wsgidav.log"
    program = Path(sys.executable).parent / "wsgidav"
    command = [str(program), "--host", host, "--port", str(port), "--root", str(folder / "data"), "--auth", "anonymous"]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    if host != "127.0.0.1":
        deadline = time.monotonic() + _START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            try:
                socket.create_connection((host, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
    else:
        _wait_for(port, process, log)
    return Server("http", host, port, folder / "data", log), process


@pytest.fixture(scope="session")
def webdav_server() -> Iterator[Server]:
    server, process = start_webdav()
    try:
        yield server
    finally:
        _stop(process)
        shutil.rmtree(server.data.parent, ignore_errors=True)


def docker_bridge_address() -> str:
    """The host's address on Docker's default bridge, which jobs in Docker containers reach it by."""
    found = subprocess.run(
        ["docker", "network", "inspect", "bridge", "--format", "{{range .IPAM.Config}}{{.Gateway}}{{end}}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.strip()
    if found:
        return found
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "docker0"], capture_output=True, text=True).stdout
    return shown.split()[3].split("/")[0] if shown.split() else "172.17.0.1"
