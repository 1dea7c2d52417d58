"""Paths, errors, logging, running commands and installing host packages: what every part of the testbed uses."""

import contextlib
import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
WORKER_NODE_DIR = REPO / "ci" / "testbed" / "worker-node"

STATE_DIR = Path(os.environ.get("TESTBED_STATE_DIR", "/var/tmp/b2box-testbed"))
SHARED_DIR = STATE_DIR / "shared"  # mounted at the same path in the worker node
CACHE_DIR = STATE_DIR / "cache"  # wheelhouses, SIF files, copies of the source tree; same path in the worker node
LOG_DIR = STATE_DIR / "logs"
POOL_LOG_DIR = LOG_DIR / "pool"  # the worker node's /var/log/testbed
UP_LOG = LOG_DIR / "testbed.log"

CONTAINER = "b2box-testbed-pool"
NETWORK = "b2box-testbed"  # internal: reaches the testbed's own containers only
HOSTNAME = "b2box-testbed"
USER = "b2box"
DEFAULT_UID = 1000
LABEL = "org.b2box.testbed"

ANALYSIS_IMAGE = "python:3.11-slim-bookworm"
REGISTRY = "127.0.0.1:5000"  # the worker node's offline registry (its loopback; see worker-node/registry.yml)
WORKER_IMAGE = "b2box-testbed/worker-node:trixie"

# What the worker node needs besides its defaults: Apptainer, HTCondor and Slurm want (nearly) all capabilities, and
# the host lacks CAP_SYS_RESOURCE, so --privileged fails. The daemons talk over the container's loopback; its only
# other interface is on an internal network (no route out). `--network none` is not enough: with loopback alone,
# getaddrinfo(AI_ADDRCONFIG) finds no address and Slurm cannot bind.
# systempaths=unconfined: `apptainer build --fakeroot` of a definition with %post mounts a fresh /proc, which Docker's
# masked /proc paths forbid ("failed to mount proc filesystem: operation not permitted").
POOL_RUN_OPTIONS = (
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "systempaths=unconfined",
    "--network",
    NETWORK,
)

# Log files (below POOL_LOG_DIR) to read when a piece of the worker node does not answer.
PIECE_LOGS = {
    "started": ["entrypoint.log"],
    "munge": ["munge/munged.log"],
    "slurm": ["slurm/slurmctld.log", "slurm/slurmd.log"],
    "htcondor": ["condor/MasterLog", "condor/CollectorLog", "condor/SchedLog", "condor/StartLog"],
    "apptainer": ["entrypoint.log"],
    "registry": ["registry.log"],
}
POOL_TIMEOUT = 180.0
REUSED_POOL_TIMEOUT = 20.0  # a running container that does not answer by then is replaced
ENGINE_TIMEOUT = 60.0


class TestbedError(RuntimeError):
    """A piece of the testbed did not come up: says which piece, what went wrong and which log to read."""

    __test__ = False  # not a test class, although pytest may see the name

    def __init__(self, piece: str, problem: str, logs: Sequence[Path | str] = ()) -> None:
        self.piece = piece
        self.problem = problem
        self.logs = [str(path) for path in logs]
        read = f" (read {', '.join(self.logs)})" if self.logs else ""
        super().__init__(f"{piece}: {problem}{read}")


class TestbedUnavailable(TestbedError):
    """This machine cannot host the testbed at all (no Docker engine and no root to start one, ...)."""


# --------------------------------------------------------------------------------------------------- logging, running


def log(message: str) -> None:
    """Print a progress line and keep it, timestamped, in the state folder's log for later comparison."""
    print(f"[testbed] {message}", file=sys.stderr, flush=True)
    with contextlib.suppress(OSError):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        with UP_LOG.open("a") as stream:
            stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n")


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Time one step of bringing the testbed up; the timings are what the cold/warm start targets are about."""
    start = time.monotonic()
    try:
        yield
    except BaseException:
        log(f"{name}: FAILED after {time.monotonic() - start:.1f} s")
        raise
    log(f"{name}: {time.monotonic() - start:.1f} s")


def sh(
    cmd: Sequence[str],
    *,
    piece: str,
    log_file: Path | None = None,
    check: bool = True,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command. With log_file its output goes there (long outputs: apt, debootstrap, builds)."""
    full_env = {**os.environ, **(env or {})}
    if log_file is None:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=full_env, stdin=subprocess.DEVNULL
        )
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as stream:
            stream.write(f"\n$ {shlex.join(cmd)}\n")
            stream.flush()
            result = subprocess.run(
                cmd,
                stdout=stream,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=timeout,
                env=full_env,
                stdin=subprocess.DEVNULL,
            )
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip()[-1500:]
        detail = f": {output}" if output else ""
        raise TestbedError(
            piece, f"`{shlex.join(cmd)}` exited with {result.returncode}{detail}", [log_file] if log_file else []
        )
    return result


_lock_depth = 0


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """Serialise testbed changes between processes (two pytest sessions, a user's `up`), re-entrant within one."""
    global _lock_depth
    if _lock_depth:
        _lock_depth += 1
        try:
            yield
        finally:
            _lock_depth -= 1
        return
    try:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        stream = (STATE_DIR / ".lock").open("a")
    except PermissionError as error:
        raise TestbedUnavailable(
            "state folder",
            f"{STATE_DIR} is not writable by this user ({error.strerror}); "
            "set TESTBED_STATE_DIR to a folder of your own",
        ) from error
    with stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        _lock_depth = 1
        try:
            yield
        finally:
            _lock_depth = 0
            fcntl.flock(stream, fcntl.LOCK_UN)


def is_root() -> bool:
    return os.geteuid() == 0


def host_user() -> tuple[int, int]:
    """uid and gid for the worker node's user: the invoking user's (or sudo's), 1000 when that is root."""
    if not is_root():
        return os.geteuid(), os.getegid()
    sudo_uid, sudo_gid = os.environ.get("SUDO_UID", "0"), os.environ.get("SUDO_GID", "0")
    if sudo_uid.isdigit() and int(sudo_uid) != 0:
        return int(sudo_uid), int(sudo_gid) if sudo_gid.isdigit() else int(sudo_uid)
    return DEFAULT_UID, DEFAULT_UID


# ------------------------------------------------------------------------------------------------- host packages, apt

_apt_updated = False


def apt_install(packages: Sequence[str]) -> None:
    """Install host packages with apt-get (updating the lists once per process): a fresh machine has none of them."""
    global _apt_updated
    if not is_root() or not shutil.which("apt-get"):
        raise TestbedUnavailable(
            "host packages", f"{' '.join(packages)} needed, but only root with apt-get can install them here"
        )
    apt_log = LOG_DIR / "apt.log"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        sh(["apt-get", "update", "-q"], piece="apt-get update", log_file=apt_log, env=env, timeout=600)
        _apt_updated = True
    sh(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
        piece="apt-get install",
        log_file=apt_log,
        env=env,
        timeout=900,
    )
    log(f"installed host packages: {' '.join(packages)}")


def debian_mirror() -> str:
    """The Debian mirror the host's apt uses (debootstrap and the worker-node build fetch from it)."""
    if os.environ.get("TESTBED_DEBIAN_MIRROR"):
        return os.environ["TESTBED_DEBIAN_MIRROR"]
    uris: list[str] = []
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("URIs:"):
                uris += line.split()[1:]
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*.list"))]:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                words = [word for word in line.split() if not word.startswith("[")]
                if len(words) >= 2 and words[0] == "deb":
                    uris.append(words[1])
    for uri in uris:
        if "security" not in uri and uri.startswith("http"):
            return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def prepare_host_folders(uid: int, gid: int) -> None:
    """Shared folder writable by everyone (jobs and host users alike), caches the worker user may write into."""
    for folder in (SHARED_DIR, CACHE_DIR, CACHE_DIR / "sif", CACHE_DIR / "src", CACHE_DIR / "wheelhouse", POOL_LOG_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        SHARED_DIR.chmod(0o1777)
    if is_root():
        for folder in (CACHE_DIR / "sif", CACHE_DIR / "src"):
            os.chown(folder, uid, gid)
