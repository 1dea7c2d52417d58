"""The worker-node container (HTCondor pool, Slurm cluster, Apptainer) and the up/down/status commands."""

import subprocess
import time
from pathlib import Path

from testbed_lib.b2luigi_venv import ensure_b2luigi_venv
from testbed_lib.browser import ensure_browser
from testbed_lib.common import (
    ANALYSIS_IMAGE,
    CACHE_DIR,
    CONTAINER,
    HOSTNAME,
    LABEL,
    LOG_DIR,
    NETWORK,
    PIECE_LOGS,
    POOL_LOG_DIR,
    POOL_RUN_OPTIONS,
    POOL_TIMEOUT,
    REUSED_POOL_TIMEOUT,
    SHARED_DIR,
    STATE_DIR,
    UP_LOG,
    USER,
    WORKER_IMAGE,
    TestbedError,
    TestbedUnavailable,
    host_user,
    locked,
    log,
    prepare_host_folders,
    step,
)
from testbed_lib.engine import docker, engine_version, ensure_engine, image_id, inspect, stop_dockerd
from testbed_lib.images import ANALYSIS_BASE, TRIXIE_BASE, ensure_base_images, ensure_worker_image
from testbed_lib.storage import ensure_storage_server
from testbed_lib.worker import Worker

# ---------------------------------------------------------------------------------------------- worker-node container


def pool_labels(image: str, uid: int, gid: int) -> dict[str, str]:
    """What the running container must match to be reused; anything else means recreating it."""
    return {
        f"{LABEL}.image": image,
        f"{LABEL}.uid": str(uid),
        f"{LABEL}.gid": str(gid),
        f"{LABEL}.state": str(STATE_DIR),
        f"{LABEL}.network": NETWORK,
        f"{LABEL}.binds": container_binds(),
        f"{LABEL}.options": " ".join(POOL_RUN_OPTIONS),  # a container started with other options is recreated
    }


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
    for key, value in (
        ("TESTBED_USER", USER),
        ("TESTBED_UID", str(uid)),
        ("TESTBED_GID", str(gid)),
        ("TESTBED_BIND_DIRS", container_binds()),
    ):
        options += ["--env", f"{key}={value}"]
    mounts = [f"{SHARED_DIR}:{SHARED_DIR}", f"{CACHE_DIR}:{CACHE_DIR}", f"{POOL_LOG_DIR}:/var/log/testbed"]
    for mount in mounts:
        options += ["--volume", mount]
    docker(
        "run",
        "--detach",
        "--name",
        CONTAINER,
        "--hostname",
        HOSTNAME,
        *options,
        WORKER_IMAGE,
        piece=f"container {CONTAINER}",
    )
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
            raise TestbedError(
                f"container {CONTAINER}", f"stopped (exit code {code})", [POOL_LOG_DIR / "entrypoint.log"]
            )
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
            raise TestbedError(
                piece, f"not ready after {timeout:.0f} s: {detail}", [POOL_LOG_DIR / name for name in PIECE_LOGS[piece]]
            )
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


def up_storage() -> str:
    """Just what the remote-target tests need: the XRootD server program (the tests start the servers)."""
    with locked(), step("storage server"):
        return ensure_storage_server()


def up_browser() -> str:
    """Just what the report's screenshot test needs: a headless Chromium. Returns its path."""
    with locked(), step("headless browser"):
        return ensure_browser()


def up_b2luigi() -> str:
    """Just what the tests with the real b2luigi need: a venv with b2box and b2luigi 1.3. Returns its Python."""
    with locked(), step("b2luigi venv"):
        return ensure_b2luigi_venv()


def up() -> Worker:
    """Bring every piece up, reusing whatever exists; a second call takes seconds."""
    uid, gid = host_user()
    with locked(), step("up (total)"):
        with step("storage server"):
            ensure_storage_server()
        with step("headless browser"):
            try:
                ensure_browser()
            except TestbedUnavailable as error:
                # Only the browser tests need it, and they bring it up themselves (failing under CI=true): a
                # machine that cannot install it (no root) still gets its worker node.
                log(f"  {error}")
        with step("b2luigi venv"):
            ensure_b2luigi_venv()
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
    print(
        f"container {CONTAINER}: running since {info['State']['StartedAt'][:19]}, user {USER} "
        f"uid {labels.get(LABEL + '.uid')} gid {labels.get(LABEL + '.gid')}"
    )
    for piece, (piece_ok, detail) in probe().items():
        ok = ok and piece_ok
        print(f"  {piece}: {'ok' if piece_ok else 'DOWN'} {detail}".rstrip())
    print(f"shared folder (same path in the container): {SHARED_DIR}")
    print(f"logs: {LOG_DIR} (timings in {UP_LOG}, daemons in {POOL_LOG_DIR})")
    return 0 if ok else 1
