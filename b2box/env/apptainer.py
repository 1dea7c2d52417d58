"""Apptainer: the ``apptainer exec`` command of a job and the sha256 of its SIF.

SIF digests are cached by path, size and modification time, so a
multi-gigabyte image is hashed once, not once per job. ``--cleanenv`` keeps
the submitting shell's environment out of the container: what a job sees is
what its spec says.
"""

from __future__ import annotations

import functools
import hashlib
import os
import subprocess

from b2box.env import user_cache
from b2box.env.identity import DigestMismatch, ImageIdentity
from b2box.env.mounts import mount_spec
from b2box.errors import B2BoxError

_CACHE_FILE = "sif-digests.json"  # in b2box.env.user_cache's folder


@functools.lru_cache(maxsize=4)
def version(apptainer: str) -> str:
    """``apptainer --version`` for provenance; empty when it cannot run here."""
    try:
        found = subprocess.run([apptainer, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return ""
    return found.stdout.strip()


def sha256_of(path: str) -> str:
    """sha256 of a file, in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def _cached_sha256(path: str) -> str:
    status = os.stat(path)
    key = f"{os.path.realpath(path)}|{status.st_size}|{status.st_mtime_ns}"
    cache = user_cache.read(_CACHE_FILE)
    if key not in cache:
        cache[key] = sha256_of(path)
        user_cache.write(_CACHE_FILE, cache)
    return str(cache[key])


def resolve(image: str, apptainer: str, pinned: str = "") -> ImageIdentity:
    """Identity of a SIF file (its sha256), a sandbox folder, or a docker/oras reference."""
    digest = ""
    if image.endswith(".sif") or os.path.isfile(image):
        if not os.path.isfile(image):
            raise B2BoxError(f"Apptainer image {image} does not exist. Build it (b2box build-env --apptainer).")
        digest = _cached_sha256(image)
    elif os.path.isdir(image):
        digest = ""  # a sandbox folder has no single content hash
    if pinned and digest and pinned not in (digest, digest.removeprefix("sha256:")):
        raise DigestMismatch(f"Apptainer image {image} is {digest}, but {pinned} is pinned")
    return ImageIdentity(
        runtime="apptainer", reference=image, digest=digest, runtime_version=version(apptainer), run_reference=image
    )


def command(
    identity: ImageIdentity,
    apptainer: str,
    binds: list[tuple[str, str]],
    working_dir: str,
    gpus: bool,
    extra_args: list[str],
    inner: list[str],
) -> list[str]:
    """``apptainer exec`` for one job, running bash with ``inner``; every bind at the same path inside as outside."""
    words = [apptainer, "exec", "--cleanenv", "--pwd", working_dir]
    for source, target in binds:
        words += ["--mount", mount_spec(source, target, target_key="destination")]
    if gpus:
        words.append("--nv")
    words += extra_args
    words += [identity.run_reference or identity.reference, "/bin/bash", *inner]
    return words
