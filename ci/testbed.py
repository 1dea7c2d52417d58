#!/usr/bin/env python3
"""The b2box testbed: a real Docker engine, HTCondor pool, Slurm cluster and Apptainer on one machine.

    python3 ci/testbed.py up              # engine, images, worker-node container; waits until every piece answers
    python3 ci/testbed.py status          # what exists and what answers (exit 0 only when all is up)
    python3 ci/testbed.py down [--engine] # remove the worker-node container (images stay); --engine stops our dockerd
    python3 ci/testbed.py install-b2box   # venv in the worker node with the current working tree; prints its python
    python3 ci/testbed.py sif [IMAGE]     # SIF of a Docker image (default: the analysis image), cached; prints its path
    python3 ci/testbed.py shell [--root]  # interactive shell in the worker node

Only the standard library is used: this runs before any virtual environment exists. The pieces:

- a Docker engine: the one that answers, else Debian's docker.io started as a background dockerd (root only);
- base images made from Debian's archive with debootstrap, since no registry may be reachable, and tagged with the
  names Dockerfiles use in FROM (python:3.11-slim-bookworm, also tagged debian:bookworm, and debian:trixie), so the
  same Dockerfiles build here and on machines that pull them;
- the worker-node image b2box-testbed/worker-node:trixie from ci/testbed/worker-node/Dockerfile;
- the container b2box-testbed-pool: an HTCondor personal pool and a one-node Slurm cluster (4 slots each) talking
  over its loopback (it has no other network), Apptainer for the ordinary user b2box, and the shared folder mounted
  at the same path as on the host. It is the submit node too.

The user b2box has the invoking user's uid, or 1000 when that is root, so files jobs write into the shared folder
belong to whoever runs the tests. State, logs and caches live in /var/tmp/b2box-testbed (TESTBED_STATE_DIR).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
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
WORKER_IMAGE = "b2box-testbed/worker-node:trixie"

# What the worker node needs besides its defaults: Apptainer, HTCondor and Slurm want (nearly) all capabilities, and
# the host lacks CAP_SYS_RESOURCE, so --privileged fails. The daemons talk over the container's loopback; its only
# other interface is on an internal network (no route out). `--network none` is not enough: with loopback alone,
# getaddrinfo(AI_ADDRCONFIG) finds no address and Slurm cannot bind.
POOL_RUN_OPTIONS = (
    "--cap-add=ALL",
    "--cap-drop=SYS_RESOURCE",
    "--security-opt",
    "seccomp=unconfined",
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


@dataclass(frozen=True)
class BaseImage:
    """A Debian root filesystem made with debootstrap and imported as the image a Dockerfile names in FROM."""

    tag: str
    suite: str
    packages: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ("bash",)
    aliases: tuple[str, ...] = ()
    like_python_image: bool = False  # behave like the official python image (pip allowed, /usr/local/bin/python)


# Debian 12's python3 is 3.11, as in python:3.11-slim-bookworm: the image analysis jobs run in.
ANALYSIS_BASE = BaseImage(
    ANALYSIS_IMAGE,
    "bookworm",
    ("python3", "python3-venv", "python3-pip", "ca-certificates"),
    cmd=("python3",),
    aliases=("debian:bookworm",),
    like_python_image=True,
)
TRIXIE_BASE = BaseImage("debian:trixie", "trixie")  # FROM of the worker-node Dockerfile


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
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                                stdin=subprocess.DEVNULL)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a") as stream:
            stream.write(f"\n$ {shlex.join(cmd)}\n")
            stream.flush()
            result = subprocess.run(cmd, stdout=stream, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                                    env=full_env, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout or "").strip()[-1500:]
        detail = f": {output}" if output else ""
        raise TestbedError(piece, f"`{shlex.join(cmd)}` exited with {result.returncode}{detail}",
                           [log_file] if log_file else [])
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
        raise TestbedUnavailable("state folder", f"{STATE_DIR} is not writable by this user ({error.strerror}); "
                                 "set TESTBED_STATE_DIR to a folder of your own") from error
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
        raise TestbedUnavailable("host packages", f"{' '.join(packages)} needed, but only root with apt-get can "
                                 "install them here")
    apt_log = LOG_DIR / "apt.log"
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        sh(["apt-get", "update", "-q"], piece="apt-get update", log_file=apt_log, env=env, timeout=600)
        _apt_updated = True
    sh(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], piece="apt-get install",
       log_file=apt_log, env=env, timeout=900)
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


# ------------------------------------------------------------------------------------------------------- Docker engine


def engine_version() -> str | None:
    """The engine's version when one answers, else None."""
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                text=True, timeout=20, stdin=subprocess.DEVNULL)
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
        raise TestbedUnavailable("Docker engine", "no Docker engine answers and only root can start one here; "
                                 "start Docker or run `sudo python3 ci/testbed.py up`")
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
        process = subprocess.Popen(["dockerd"], stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
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


def docker(*args: str, piece: str = "docker", check: bool = True, timeout: float | None = 120,
           log_file: Path | None = None, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
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


# --------------------------------------------------------------------------------------------------------- base images


def ensure_base_images(images: Sequence[BaseImage]) -> None:
    """Reuse images that exist; make the missing ones from Debian's archive (in parallel), or pull them."""
    missing = [image for image in images if image_id(image.tag) is None]
    if missing and can_debootstrap():
        if not shutil.which("debootstrap"):
            apt_install(["debootstrap"])
        mirror = debian_mirror()
        with concurrent.futures.ThreadPoolExecutor(len(missing)) as pool:
            futures = [pool.submit(build_base_image, image, mirror) for image in missing]
            errors = [future.exception() for future in futures]
        for error in errors:
            if error:
                raise error
    elif missing:
        for image in missing:
            pull_image(image.tag)
    for image in images:
        for alias in image.aliases:
            if image_id(alias) is None:
                docker("tag", image.tag, alias, piece=f"image {alias}")


def can_debootstrap() -> bool:
    return is_root() and sys.platform == "linux" and bool(shutil.which("debootstrap") or shutil.which("apt-get"))


def pull_image(tag: str) -> None:
    """Where debootstrap cannot run (no root, not Debian), a registry is the only source left."""
    result = docker("pull", tag, piece=f"image {tag}", check=False, timeout=900)
    if result.returncode != 0:
        raise TestbedUnavailable(f"image {tag}", "missing, not pullable, and making it with debootstrap needs root "
                                 f"on a Debian-like host: {result.stderr.strip()[-300:]}")


def build_base_image(image: BaseImage, mirror: str) -> None:
    """debootstrap a minimal root filesystem, tidy it and `docker import` it under the image's tag."""
    build_log = LOG_DIR / f"image-{slug(image.tag)}.log"
    (STATE_DIR / "build").mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"rootfs-{image.suite}-", dir=STATE_DIR / "build"))
    start = time.monotonic()
    try:
        include = [f"--include={','.join(image.packages)}"] if image.packages else []
        sh(["debootstrap", "--variant=minbase", *include, image.suite, str(root), mirror],
           piece=f"image {image.tag} (debootstrap {image.suite})", log_file=build_log, timeout=900)
        tidy_rootfs(root, image)
        import_rootfs(root, image, build_log)
    finally:
        unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
    log(f"made image {image.tag} from Debian {image.suite} in {time.monotonic() - start:.1f} s")


def tidy_rootfs(root: Path, image: BaseImage) -> None:
    """Drop apt's downloads; make the python image behave like the official one for Dockerfiles written for it."""
    for folder in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
        for path in folder.glob("*"):
            if path.is_file():
                path.unlink()
    if image.like_python_image:
        # The official image lets `pip install` into its Python and has python/pip in /usr/local/bin.
        for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for name, target in (("python", "python3"), ("python3", "python3"), ("pip", "pip3"), ("pip3", "pip3")):
            link = root / "usr/local/bin" / name
            if not link.exists():
                link.symlink_to(f"/usr/bin/{target}")


def import_rootfs(root: Path, image: BaseImage, build_log: Path) -> None:
    """Stream the folder as a tar into `docker import`, with the settings a Dockerfile's FROM would inherit."""
    changes = [
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "ENV LANG=C.UTF-8",
        f"CMD {json.dumps(list(image.cmd))}",
        f"LABEL {LABEL}.source=debootstrap-{image.suite}",
    ]
    options = [arg for change in changes for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    assert tar.stdout is not None
    with build_log.open("a") as stream:
        result = subprocess.run(["docker", "import", *options, "-", image.tag], stdin=tar.stdout, stdout=stream,
                                stderr=subprocess.STDOUT)
    tar.stdout.close()
    if tar.wait() != 0 or result.returncode != 0:
        raise TestbedError(f"image {image.tag}", "docker import of the root filesystem failed", [build_log])


def unmount_below(root: Path) -> None:
    """Unmount what a failed debootstrap left mounted (/proc, ...) before the folder is deleted."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def slug(text: str) -> str:
    return "".join(char if char.isalnum() or char in ".-" else "-" for char in text)


# --------------------------------------------------------------------------------------------------- worker-node image


def folder_digest(folder: Path) -> str:
    """Digest of a build context (names, modes, contents): the worker image is rebuilt only when it changes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"{path.relative_to(folder)}\0{path.stat().st_mode & 0o111}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_worker_image() -> str:
    """Build the worker-node image from ci/testbed/worker-node unless an image of the same context exists."""
    digest = folder_digest(WORKER_NODE_DIR)
    if image_label(WORKER_IMAGE, f"{LABEL}.context") == digest:
        return image_id(WORKER_IMAGE) or ""
    build_log = LOG_DIR / "image-worker-node.log"
    # Without buildx, only the classic builder works (and it is what Debian's docker.io has).
    env = {} if has_buildx() else {"DOCKER_BUILDKIT": "0"}
    docker("build", "--network", "host", "--build-arg", f"DEBIAN_MIRROR={debian_mirror()}", "--label",
           f"{LABEL}.context={digest}", "--tag", WORKER_IMAGE, str(WORKER_NODE_DIR), piece=f"image {WORKER_IMAGE}",
           log_file=build_log, timeout=1800, env=env)
    log(f"built image {WORKER_IMAGE} (context {digest})")
    # Earlier builds of it, now untagged, would pile up with every change to the context.
    docker("image", "prune", "--force", "--filter", f"label={LABEL}.context", check=False)
    return image_id(WORKER_IMAGE) or ""


def has_buildx() -> bool:
    return subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0


# ---------------------------------------------------------------------------------------------- worker-node container


def prepare_host_folders(uid: int, gid: int) -> None:
    """Shared folder writable by everyone (jobs and host users alike), caches the worker user may write into."""
    for folder in (SHARED_DIR, CACHE_DIR, CACHE_DIR / "sif", CACHE_DIR / "src", CACHE_DIR / "wheelhouse",
                   POOL_LOG_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):
        SHARED_DIR.chmod(0o1777)
    if is_root():
        for folder in (CACHE_DIR / "sif", CACHE_DIR / "src"):
            os.chown(folder, uid, gid)


def pool_labels(image: str, uid: int, gid: int) -> dict[str, str]:
    """What the running container must match to be reused; anything else means recreating it."""
    return {f"{LABEL}.image": image, f"{LABEL}.uid": str(uid), f"{LABEL}.gid": str(gid),
            f"{LABEL}.state": str(STATE_DIR), f"{LABEL}.network": NETWORK, f"{LABEL}.binds": container_binds()}


def container_binds() -> str:
    """What HTCondor binds into the containers it starts, as a site binds its shared filesystems: the folders
    shared with the host, and /home (where the user's b2box venv lives, as on many sites)."""
    return f"{SHARED_DIR},{CACHE_DIR},/home"


def ensure_network() -> None:
    """The internal network the worker node sits on: other testbed containers may join it, nothing leaves it."""
    if docker("network", "inspect", NETWORK, check=False, timeout=30).returncode != 0:
        docker("network", "create", "--internal", "--label", f"{LABEL}=1", NETWORK, piece=f"network {NETWORK}")


def ensure_pool(image: str, uid: int, gid: int) -> bool:
    """Reuse the running worker node if it matches (True); else (re)create it. Readiness is wait_for_pool's job."""
    wanted = pool_labels(image, uid, gid)
    info = inspect("container", CONTAINER)
    if info:
        labels = info["Config"].get("Labels") or {}
        if info["State"]["Running"] and all(labels.get(key) == value for key, value in wanted.items()):
            return True
        log(f"replacing container {CONTAINER} (stopped, or made from another image or for another user)")
        docker("rm", "--force", CONTAINER, piece=f"container {CONTAINER}")
    prepare_host_folders(uid, gid)
    ensure_network()
    options = [*POOL_RUN_OPTIONS]
    if Path("/dev/fuse").exists():
        options += ["--device", "/dev/fuse"]
    for key, value in wanted.items():
        options += ["--label", f"{key}={value}"]
    for key, value in (("TESTBED_USER", USER), ("TESTBED_UID", str(uid)), ("TESTBED_GID", str(gid)),
                       ("TESTBED_BIND_DIRS", container_binds())):
        options += ["--env", f"{key}={value}"]
    mounts = [f"{SHARED_DIR}:{SHARED_DIR}", f"{CACHE_DIR}:{CACHE_DIR}", f"{POOL_LOG_DIR}:/var/log/testbed"]
    for mount in mounts:
        options += ["--volume", mount]
    docker("run", "--detach", "--name", CONTAINER, "--hostname", HOSTNAME, *options, WORKER_IMAGE,
           piece=f"container {CONTAINER}")
    log(f"started container {CONTAINER} (user {USER}, uid {uid}, gid {gid})")
    return False


def probe() -> dict[str, tuple[bool, str]]:
    """Ask the worker node which pieces answer: {piece: (ok, detail)}."""
    try:
        result = docker("exec", CONTAINER, "testbed-probe", check=False, timeout=60)
    except subprocess.TimeoutExpired:
        return {"started": (False, "testbed-probe did not answer within 60 s")}
    pieces: dict[str, tuple[bool, str]] = {}
    for line in result.stdout.splitlines():
        piece, _, rest = line.partition(" ")
        status, _, detail = rest.partition(" ")
        pieces[piece] = (status == "ok", detail)
    return pieces


def wait_for_pool(timeout: float = POOL_TIMEOUT) -> dict[str, tuple[bool, str]]:
    """Poll until every piece answers; fail naming the first piece that did not and the logs to read."""
    start = time.monotonic()
    seen_ready: set[str] = set()
    pieces: dict[str, tuple[bool, str]] = {}
    while True:
        info = inspect("container", CONTAINER)
        if not info or not info["State"]["Running"]:
            code = info["State"]["ExitCode"] if info else "gone"
            raise TestbedError(f"container {CONTAINER}", f"stopped (exit code {code})",
                               [POOL_LOG_DIR / "entrypoint.log"])
        pieces = probe()
        for piece, (ok, detail) in pieces.items():
            if ok and piece not in seen_ready:
                seen_ready.add(piece)
                log(f"  {piece} ready after {time.monotonic() - start:.1f} s {detail}".rstrip())
        if pieces and all(ok for ok, _ in pieces.values()) and set(pieces) >= set(PIECE_LOGS):
            return pieces
        if time.monotonic() - start > timeout:
            down = [piece for piece in PIECE_LOGS if not pieces.get(piece, (False, ""))[0]]
            piece = down[0]
            detail = pieces.get(piece, (False, "no answer from testbed-probe"))[1]
            raise TestbedError(piece, f"not ready after {timeout:.0f} s: {detail}",
                               [POOL_LOG_DIR / name for name in PIECE_LOGS[piece]])
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------------------------ commands


def up_docker() -> str:
    """Just what Docker-only tests need: an engine and the analysis image. Returns the image's tag."""
    with locked():
        with step("docker engine"):
            ensure_engine()
        with step("analysis image"):
            ensure_base_images([ANALYSIS_BASE])
    return ANALYSIS_IMAGE


def up() -> Worker:
    """Bring every piece up, reusing whatever exists; a second call takes seconds."""
    uid, gid = host_user()
    with locked(), step("up (total)"):
        with step("docker engine"):
            version = ensure_engine()
            log(f"  Docker {version}")
        with step("base images"):
            ensure_base_images([ANALYSIS_BASE, TRIXIE_BASE])
        with step("worker-node image"):
            worker_image = ensure_worker_image()
        with step("worker-node container"):
            reused = ensure_pool(worker_image, uid, gid)
        with step("worker-node pieces ready"):
            try:
                wait_for_pool(REUSED_POOL_TIMEOUT if reused else POOL_TIMEOUT)
            except TestbedError as error:
                if not reused:
                    raise
                # A daemon of a container that ran for a while died (or was killed): start afresh.
                log(f"reused container does not answer ({error}); recreating it")
                docker("rm", "--force", CONTAINER, piece=f"container {CONTAINER}")
                ensure_pool(worker_image, uid, gid)
                wait_for_pool()
    return Worker(uid=uid, gid=gid)


def down(engine: bool = False) -> None:
    """Remove the worker-node container (images stay, so the next `up` is quick); optionally stop our dockerd."""
    with locked():
        if engine_version():
            if inspect("container", CONTAINER):
                docker("rm", "--force", CONTAINER, piece=f"container {CONTAINER}")
                log(f"removed container {CONTAINER}")
            else:
                log(f"no container {CONTAINER}")
            if docker("network", "inspect", NETWORK, check=False, timeout=30).returncode == 0:
                docker("network", "rm", NETWORK, piece=f"network {NETWORK}", check=False)
        if engine:
            stop_dockerd()


def status() -> int:
    """Print what exists and what answers; 0 when everything is up."""
    ok = True
    version = engine_version()
    print(f"Docker engine: {'Docker ' + version if version else 'NOT answering'} (log {LOG_DIR / 'dockerd.log'})")
    if not version:
        return 1
    for tag in (ANALYSIS_IMAGE, *ANALYSIS_BASE.aliases, TRIXIE_BASE.tag, WORKER_IMAGE):
        found = image_id(tag)
        ok = ok and bool(found)
        print(f"image {tag}: {found[7:19] if found else 'missing'}")
    info = inspect("container", CONTAINER)
    if not info or not info["State"]["Running"]:
        print(f"container {CONTAINER}: {'stopped' if info else 'missing'}")
        return 1
    labels = info["Config"].get("Labels") or {}
    print(f"container {CONTAINER}: running since {info['State']['StartedAt'][:19]}, user {USER} "
          f"uid {labels.get(LABEL + '.uid')} gid {labels.get(LABEL + '.gid')}")
    for piece, (piece_ok, detail) in probe().items():
        ok = ok and piece_ok
        print(f"  {piece}: {'ok' if piece_ok else 'DOWN'} {detail}".rstrip())
    print(f"shared folder (same path in the container): {SHARED_DIR}")
    print(f"logs: {LOG_DIR} (timings in {UP_LOG}, daemons in {POOL_LOG_DIR})")
    return 0 if ok else 1


# -------------------------------------------------------------------------------------------------------- the worker


class CommandFailed(subprocess.CalledProcessError):
    """A command in the worker node failed; unlike CalledProcessError its message shows the output."""

    def __str__(self) -> str:
        tail = "\n".join(part.strip()[-3000:] for part in (self.stdout, self.stderr) if part and part.strip())
        return f"{super().__str__()}\n{tail}".rstrip()


@dataclass(frozen=True)
class Worker:
    """The worker-node container, which is also the submit node: run commands there as the user or root."""

    uid: int
    gid: int
    user: str = USER
    container: str = CONTAINER
    shared_dir: Path = SHARED_DIR
    _venvs: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict, compare=False, repr=False)

    def run(
        self,
        cmd: str | Sequence[str],
        user: str = USER,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = 300,
        cwd: str | Path | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (a string goes through bash -c) in the worker node; CommandFailed when check and it fails."""
        argv = ["bash", "-c", cmd] if isinstance(cmd, str) else [str(arg) for arg in cmd]
        options = ["--user", user]
        if input is not None:
            options.append("--interactive")
        if cwd is not None:
            options += ["--workdir", str(cwd)]
        for key, value in (env or {}).items():
            options += ["--env", f"{key}={value}"]
        result = subprocess.run(["docker", "exec", *options, self.container, *argv], capture_output=True, text=True,
                                timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise CommandFailed(result.returncode, argv, result.stdout, result.stderr)
        return result

    def install_b2box(self, source: Path = REPO, extras: Sequence[str] = ()) -> str:
        """Path of a venv python in the worker node with `source` (the working tree) installed; cached per tree."""
        key = (str(source), tuple(extras))
        if key not in self._venvs or not self._source_current(self._venvs[key], source):
            self._venvs[key] = install_b2box(self, source, extras)
        return self._venvs[key]

    def _source_current(self, python: str, source: Path) -> bool:
        marker = Path(python).parent.parent / ".b2box-source"
        answer = self.run(["cat", str(marker)], check=False)
        return answer.stdout.strip() == source_digest(source)

    def sif(self, image: str = ANALYSIS_IMAGE) -> str:
        """Path (same on host and worker) of a SIF file made from a local Docker image, cached per image id."""
        return build_sif(self, image)


def current_worker() -> Worker:
    """The Worker of the running container (uid and gid from its labels), without bringing anything up."""
    info = inspect("container", CONTAINER)
    if not info:
        raise TestbedError(f"container {CONTAINER}", "missing: run `python3 ci/testbed.py up`")
    labels = info["Config"].get("Labels") or {}
    return Worker(uid=int(labels[f"{LABEL}.uid"]), gid=int(labels[f"{LABEL}.gid"]))


# ---------------------------------------------------------------------------------------- b2box inside the worker node


def project_requirements(source: Path, extras: Sequence[str]) -> list[str]:
    """Dependencies from pyproject.toml (plus extras): what the wheelhouse must hold."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in extras:
        requirements += project.get("optional-dependencies", {}).get(extra, [])
    return requirements


def source_digest(source: Path) -> str:
    """Digest of what makes the b2box wheel: the package and the project files."""
    digest = hashlib.sha256()
    for path in sorted(source_files(source)):
        digest.update(f"{path.relative_to(source)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def source_files(source: Path) -> list[Path]:
    top = [p for p in source.iterdir() if p.is_file() and (p.suffix in {".toml", ".cfg", ".in"} or p.name in
                                                           {"setup.py"} or p.name.startswith(("README", "LICENSE")))]
    package = [p for p in (source / "b2box").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    return top + package


def host_pip() -> list[str]:
    """A pip on the host to fill the wheelhouse (the worker node has no network)."""
    for python in dict.fromkeys((sys.executable, "/usr/bin/python3")):
        if subprocess.run([python, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return [python, "-m", "pip"]
    apt_install(["python3-pip"])
    return ["/usr/bin/python3", "-m", "pip"]


def ensure_wheelhouse(requirements: Sequence[str], python_version: str, machine: str) -> Path:
    """Binary wheels for the worker node's Python, downloaded on the host once per requirement set."""
    key = hashlib.sha256(f"{python_version} {machine} {sorted(requirements)}".encode()).hexdigest()[:16]
    wheelhouse = CACHE_DIR / "wheelhouse" / key
    if (wheelhouse / ".complete").exists():
        return wheelhouse
    partial = wheelhouse.with_name(f"{key}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    platforms = [f"manylinux_2_{minor}_{machine}" for minor in (17, 28, 34)] + [f"manylinux2014_{machine}", "any"]
    cmd = [*host_pip(), "download", "--only-binary=:all:", "--python-version", python_version,
           "--implementation", "cp", "--abi", f"cp{python_version.replace('.', '')}", "--abi", "abi3", "--abi", "none",
           *[arg for platform in platforms for arg in ("--platform", platform)], "--dest", str(partial),
           *requirements, "setuptools", "wheel"]
    sh(cmd, piece="wheelhouse for the worker node", log_file=LOG_DIR / "wheelhouse.log", timeout=900)
    (partial / ".complete").touch()
    shutil.rmtree(wheelhouse, ignore_errors=True)
    partial.rename(wheelhouse)
    log(f"made wheelhouse {wheelhouse} for Python {python_version}")
    return wheelhouse


def install_b2box(worker: Worker, source: Path = REPO, extras: Sequence[str] = ()) -> str:
    """A venv in the worker node (system site packages, so Debian's htcondor2 stays importable) with the current
    working tree installed. Dependencies come from a host-made wheelhouse once; after a change to the tree only
    b2box is reinstalled (a few seconds)."""
    with locked():
        python_version, machine = worker.run(
            ["python3", "-c", "import platform, sys; print('%d.%d' % sys.version_info[:2], platform.machine())"]
        ).stdout.split()
        requirements = project_requirements(source, extras)
        wheelhouse = ensure_wheelhouse(requirements, python_version, machine)
        venv = f"/home/{worker.user}/venvs/b2box-{wheelhouse.name}"
        pip = [f"{venv}/bin/python", "-m", "pip", "--disable-pip-version-check", "--no-input", "--quiet"]
        if worker.run(["test", "-e", f"{venv}/.deps-installed"], check=False).returncode != 0:
            with step(f"venv {venv}"):
                worker.run(["python3", "-m", "venv", "--system-site-packages", "--clear", venv])
                worker.run([*pip, "install", "--no-index", "--find-links", str(wheelhouse), *requirements,
                            "setuptools", "wheel"], timeout=600)
                worker.run(["touch", f"{venv}/.deps-installed"])
        digest = source_digest(source)
        marker = f"{venv}/.b2box-source"
        if worker.run(["cat", marker], check=False).stdout.strip() != digest:
            with step(f"install b2box {digest} into {venv}"):
                copy = copy_source(source, digest, worker)
                worker.run([*pip, "install", "--no-index", "--no-deps", "--no-build-isolation", "--force-reinstall",
                            str(copy)], timeout=600)
                worker.run(["bash", "-c", f"echo {digest} > {marker}"])
        return f"{venv}/bin/python"


def copy_source(source: Path, digest: str, worker: Worker) -> Path:
    """Copy the tree's package files where the worker user can build from them, leaving the repository untouched."""
    folder = CACHE_DIR / "src"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if old.name != digest:
            shutil.rmtree(old, ignore_errors=True)
    copy = folder / digest
    shutil.rmtree(copy, ignore_errors=True)
    for path in source_files(source):
        target = copy / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    if is_root():
        for path in [copy, *copy.rglob("*")]:
            os.chown(path, worker.uid, worker.gid)
    return copy


def build_sif(worker: Worker, image: str = ANALYSIS_IMAGE) -> str:
    """docker save the image, then `apptainer build` it as the worker user (as root Apptainer fails in here)."""
    with locked():
        found = image_id(image)
        if not found:
            raise TestbedError(f"image {image}", "missing: cannot make a SIF of it")
        folder = CACHE_DIR / "sif"
        sif = folder / f"{slug(image)}-{found.split(':')[-1][:12]}.sif"
        if sif.exists():
            return str(sif)
        with step(f"SIF of {image}"):
            prepare_host_folders(worker.uid, worker.gid)
            archive = folder / f"{sif.stem}.tar"
            docker("save", image, "--output", str(archive), piece=f"SIF of {image}", timeout=600)
            archive.chmod(0o644)
            partial = f"{sif}.partial"
            try:
                worker.run(["apptainer", "build", "--force", partial, f"docker-archive://{archive}"], timeout=900)
                os.replace(partial, sif)
            finally:
                archive.unlink(missing_ok=True)
        return str(sif)


# ----------------------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ci/testbed.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="bring everything up (idempotent)")
    down_parser = commands.add_parser("down", help="remove the worker-node container; images stay")
    down_parser.add_argument("--engine", action="store_true", help="also stop the dockerd that `up` started")
    commands.add_parser("status", help="what exists and what answers")
    install_parser = commands.add_parser("install-b2box", help="venv with the working tree in the worker node")
    install_parser.add_argument("--source", type=Path, default=REPO)
    install_parser.add_argument("--extra", action="append", default=[], help="optional dependency group")
    sif_parser = commands.add_parser("sif", help="SIF file of a Docker image, made in the worker node")
    sif_parser.add_argument("image", nargs="?", default=ANALYSIS_IMAGE)
    shell_parser = commands.add_parser("shell", help="interactive shell in the worker node")
    shell_parser.add_argument("--root", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
            return status()
        if args.command == "down":
            down(engine=args.engine)
        elif args.command == "status":
            return status()
        elif args.command == "install-b2box":
            print(up().install_b2box(args.source.resolve(), args.extra))
        elif args.command == "sif":
            print(up().sif(args.image))
        elif args.command == "shell":
            user = "root" if args.root else USER
            tty = ["--tty"] if sys.stdin.isatty() else []
            return subprocess.call(["docker", "exec", "--interactive", *tty, "--user", user, "--workdir",
                                    str(SHARED_DIR), CONTAINER, "bash", "-l"])
    except TestbedUnavailable as error:
        print(f"testbed unavailable here: {error}", file=sys.stderr)
        return 3
    except TestbedError as error:
        print(f"testbed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
