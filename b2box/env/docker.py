"""Docker: the ``docker run`` command of a job and the content ID of its image.

Jobs start the image by its ID (``sha256:...``), resolved once when the job
is prepared, so a tag that moves in between cannot change what runs. Jobs
run as the invoking user's uid:gid (outputs are not owned by root), without
``--privileged`` and without the Docker socket.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from b2box.env.identity import DigestMismatch, ImageIdentity
from b2box.env.mounts import mount_spec
from b2box.errors import B2BoxError


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    import docker  # the Docker Engine SDK; imported here so jobs without Docker never pay for it

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:
        raise B2BoxError(
            f"cannot reach the Docker engine ({exc}). Start Docker (for example `sudo systemctl start docker`) "
            "or set runtime to 'apptainer' or 'none'."
        ) from None
    return client


def engine_version() -> str:
    """The Docker engine's version, for provenance."""
    return str(_client().version().get("Version", ""))


def resolve(image: str, pinned: str = "") -> ImageIdentity:
    """The image's content ID; refuses when it differs from ``pinned``."""
    import docker.errors

    try:
        found = _client().images.get(image)
    except docker.errors.ImageNotFound:
        raise B2BoxError(
            f"Docker image {image!r} is not on this machine. Pull it (docker pull {image}), build it (b2box "
            "build-env) or load it (docker load) first; b2box does not pull images itself."
        ) from None
    digest = str(found.id)
    if pinned and pinned not in (digest, digest.removeprefix("sha256:")):
        raise DigestMismatch(f"Docker image {image!r} is {digest}, but {pinned} is pinned")
    return ImageIdentity(
        runtime="docker", reference=image, digest=digest, runtime_version=engine_version(), run_reference=digest
    )


def runs_python(reference: str) -> str:
    """Start ``python3`` in the image once; what went wrong, or empty. The container is removed whatever happens
    (one that could not start would otherwise be left behind, created)."""
    import docker.errors

    container = _client().containers.create(reference, ["-c", "pass"], entrypoint="python3", network_disabled=True)
    try:
        container.start()
        code = int(container.wait(timeout=300).get("StatusCode", 1))
        return f"python3 exited with code {code}" if code else ""
    except docker.errors.APIError as error:
        said = str(error.explanation or error).strip()
        found = re.search(r'exec: "?python3"?: [^:]*', said)  # the runtime's words, without its layers' prefixes
        return found.group(0) if found else (said.splitlines() or ["it could not start"])[-1]
    finally:
        container.remove(force=True)


def command(
    identity: ImageIdentity,
    binds: list[tuple[str, str]],
    working_dir: str,
    gpus: bool,
    extra_args: list[str],
    name: str,
    inner: list[str],
) -> list[str]:
    """``docker run`` for one job, running bash with ``inner``; every bind at the same path inside as outside."""
    words = [
        "docker",
        "run",
        "--rm",
        "--init",
        "--name",
        name,
        "--user",
        f"{os.getuid()}:{os.getgid()}",
        "--workdir",
        working_dir,
        "--env",
        "HOME=/tmp",
        "--security-opt",
        "no-new-privileges",
    ]
    for source, target in binds:
        words += ["--mount", mount_spec(source, target)]
    if gpus:
        words += ["--gpus", "all"]
    words += extra_args
    # The image's own ENTRYPOINT is bypassed, as `apptainer exec` bypasses a runscript: what prepares
    # a job's environment is its env_script, the same under every runtime.
    words += ["--entrypoint", "/bin/bash", identity.run_reference or identity.reference, *inner]
    return words
