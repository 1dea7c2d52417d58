"""Whether an image has the ``python3`` its jobs start, found out once per image before the first task runs.

Without it, an image without Python (a bash-only image, a wrong tag) started a container for every task, each
failing with exit 72; now the run stops before anything runs, with one line naming the image and the fix (exit 2).
An image known to have Python is remembered by its content digest (:mod:`b2box.env.user_cache`), so a run pays one
container start per new image, not per run. A task whose ``env_script`` or ``executable`` provides the interpreter
is not checked (what its setup makes available cannot be known without running it), nor is an Apptainer image
where this machine has no Apptainer (its jobs run elsewhere; the job's bootstrap still names a missing Python).
"""

from __future__ import annotations

import shutil
import subprocess

from b2box.env import docker, user_cache
from b2box.env.identity import ImageIdentity
from b2box.env.spec import EnvSpec
from b2box.errors import B2BoxError

_CACHE_FILE = "images-with-python.json"
_checked: set[str] = set()  # images found to have Python in this process


def check_python(spec: EnvSpec, identity: ImageIdentity) -> None:
    """Raise a :class:`B2BoxError` naming the image and the fix when it has no ``python3``."""
    if identity.runtime not in ("docker", "apptainer") or spec.env_script or spec.executable:
        return
    key = f"{identity.runtime}|{identity.digest or identity.reference}"
    if key in _checked:
        return
    known = user_cache.read(_CACHE_FILE)
    if identity.digest and known.get(key):
        _checked.add(key)
        return
    problem = _run_python(spec, identity)
    if problem is None:  # not here to check: neither remembered nor refused
        return
    if problem:
        raise B2BoxError(
            f"{identity.runtime} image {identity.reference} has no python3 ({problem}), and each task's job runs "
            "python3 inside it. Use an image with Python 3 (b2box build-env makes one from yours), or set "
            "env_script or executable to what provides Python in this image."
        )
    _checked.add(key)
    if identity.digest:
        user_cache.write(_CACHE_FILE, {**known, key: True})


def _run_python(spec: EnvSpec, identity: ImageIdentity) -> str | None:
    """Start python3 in the image once; what went wrong, empty when it ran, None when it cannot be tried here."""
    reference = identity.run_reference or identity.reference
    if identity.runtime == "docker":
        return docker.runs_python(reference)
    if not shutil.which(spec.apptainer_command):
        return None  # no Apptainer here: the jobs run where it is (a farm's nodes); the bootstrap checks there
    try:
        done = subprocess.run(
            [spec.apptainer_command, "exec", "--cleanenv", reference, "python3", "-c", "pass"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    return "" if done.returncode == 0 else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
