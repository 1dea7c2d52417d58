"""The Docker engine: the one that answers, else Debian's docker.io started as a background dockerd (root only)."""

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from testbed_lib.common import (
    ENGINE_TIMEOUT,
    LOG_DIR,
    STATE_DIR,
    TestbedError,
    TestbedUnavailable,
    apt_install,
    is_root,
    log,
    sh,
)

# ------------------------------------------------------------------------------------------------------- Docker engine


def engine_version() -> str | None:
    """The engine's version when one answers, else None."""
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


def ensure_engine() -> str:
    """Use the engine that answers; else install Debian's docker.io and start dockerd ourselves (no systemd here)."""
    version = engine_version()
    if version:
        return version
    if not is_root():
        raise TestbedUnavailable(
            "Docker engine",
            "no Docker engine answers and only root can start one here; "
            "start Docker or run `sudo python3 ci/testbed.py up`",
        )
    if not shutil.which("dockerd"):
        apt_install(["docker.io"])
        version = engine_version()  # the package's scripts may have started it
        if version:
            return version
    return start_dockerd()


def start_dockerd() -> str:
    """Start dockerd in its own session so it outlives this process; wait until `docker info` answers."""
    dockerd_log = LOG_DIR / "dockerd.log"
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with dockerd_log.open("a") as stream:
        stream.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} dockerd started by ci/testbed.py\n")
        stream.flush()
        process = subprocess.Popen(
            ["dockerd"], stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    (STATE_DIR / "dockerd.pid").write_text(f"{process.pid}\n")
    deadline = time.monotonic() + ENGINE_TIMEOUT
    while time.monotonic() < deadline:
        version = engine_version()
        if version:
            log(f"started dockerd (pid {process.pid}), Docker {version}")
            return version
        if process.poll() is not None:
            raise TestbedError("Docker engine", f"dockerd exited with {process.returncode}", [dockerd_log])
        time.sleep(0.5)
    raise TestbedError("Docker engine", f"dockerd did not answer within {ENGINE_TIMEOUT:.0f} s", [dockerd_log])


def stop_dockerd() -> None:
    """Stop the dockerd that `up` started (never one we did not start)."""
    pid_file = STATE_DIR / "dockerd.pid"
    if not pid_file.exists():
        log("no dockerd started by the testbed")
        return
    pid = int(pid_file.read_text())
    comm = Path(f"/proc/{pid}/comm")
    if not comm.exists() or comm.read_text().strip() != "dockerd":  # gone, and its pid maybe reused since
        pid_file.unlink()
        log(f"dockerd (pid {pid}) no longer runs")
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink()
        return
    for _ in range(60):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    pid_file.unlink()
    log(f"stopped dockerd (pid {pid})")


def docker(
    *args: str,
    piece: str = "docker",
    check: bool = True,
    timeout: float | None = 120,
    log_file: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return sh(["docker", *args], piece=piece, check=check, timeout=timeout, log_file=log_file, env=env)


def inspect(kind: str, name: str) -> dict | None:
    """`docker inspect` of an image or container as a dict, None when it does not exist."""
    result = docker(kind, "inspect", name, check=False, timeout=30)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout)[0]


def image_id(tag: str) -> str | None:
    info = inspect("image", tag)
    return info["Id"] if info else None


def image_label(tag: str, key: str) -> str | None:
    info = inspect("image", tag)
    labels = ((info or {}).get("Config") or {}).get("Labels") or {}
    return labels.get(key)
