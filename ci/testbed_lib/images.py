"""Base images made from Debian's archive with debootstrap (no registry may be reachable), and the worker-node image."""

import concurrent.futures
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed_lib.common import (
    ANALYSIS_IMAGE,
    LABEL,
    LOG_DIR,
    STATE_DIR,
    WORKER_IMAGE,
    WORKER_NODE_DIR,
    TestbedError,
    TestbedUnavailable,
    apt_install,
    debian_mirror,
    is_root,
    log,
    sh,
)
from testbed_lib.engine import docker, image_id, image_label


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
        raise TestbedUnavailable(
            f"image {tag}",
            "missing, not pullable, and making it with debootstrap needs root "
            f"on a Debian-like host: {result.stderr.strip()[-300:]}",
        )


def build_base_image(image: BaseImage, mirror: str) -> None:
    """debootstrap a minimal root filesystem, tidy it and `docker import` it under the image's tag."""
    build_log = LOG_DIR / f"image-{slug(image.tag)}.log"
    (STATE_DIR / "build").mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"rootfs-{image.suite}-", dir=STATE_DIR / "build"))
    start = time.monotonic()
    try:
        include = [f"--include={','.join(image.packages)}"] if image.packages else []
        sh(
            ["debootstrap", "--variant=minbase", *include, image.suite, str(root), mirror],
            piece=f"image {image.tag} (debootstrap {image.suite})",
            log_file=build_log,
            timeout=900,
        )
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
        result = subprocess.run(
            ["docker", "import", *options, "-", image.tag], stdin=tar.stdout, stdout=stream, stderr=subprocess.STDOUT
        )
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
    docker(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"DEBIAN_MIRROR={debian_mirror()}",
        "--label",
        f"{LABEL}.context={digest}",
        "--tag",
        WORKER_IMAGE,
        str(WORKER_NODE_DIR),
        piece=f"image {WORKER_IMAGE}",
        log_file=build_log,
        timeout=1800,
        env=env,
    )
    log(f"built image {WORKER_IMAGE} (context {digest})")
    # Earlier builds of it, now untagged, would pile up with every change to the context.
    docker("image", "prune", "--force", "--filter", f"label={LABEL}.context", check=False)
    return image_id(WORKER_IMAGE) or ""


def has_buildx() -> bool:
    return subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode == 0
