"""An environment spec's image, resolved to what identifies it: a Docker image's content ID, a SIF's sha256.

Resolving is asked once per image per process: preparing every job and checking every result against the
environment it was made in both need it, and a Docker engine call or the hash of a multi-gigabyte SIF is not
something to repeat.
"""

from __future__ import annotations

import sys

from b2box.env import apptainer, docker
from b2box.env.identity import DigestMismatch, ImageIdentity
from b2box.env.spec import EnvSpec
from b2box.errors import B2BoxError

_resolved: dict[tuple[str, str, str, str], ImageIdentity] = {}


def resolve(task_id: str, spec: EnvSpec) -> ImageIdentity:
    """The identity of ``spec``'s image (no image: this Python); errors name the task, the setting and the fix."""
    key = (spec.runtime, spec.image, spec.pinned_digest, spec.apptainer_command)
    if key not in _resolved:
        try:
            if spec.runtime == "docker":
                found = docker.resolve(spec.image, spec.pinned_digest)
            elif spec.runtime == "apptainer":
                found = apptainer.resolve(spec.image, spec.apptainer_command, spec.pinned_digest)
            else:
                found = ImageIdentity(runtime="none", runtime_version=f"python {sys.version.split()[0]}")
        except DigestMismatch as mismatch:
            raise B2BoxError(
                f"{task_id}: refusing to run: {mismatch}. Rebuild the image or update "
                "the pinned digest (image_digest setting or b2box.lock)."
            ) from None
        except B2BoxError as error:
            raise B2BoxError(f"{task_id}: setting 'image' ({spec.runtime}): {error}") from None
        _resolved[key] = found
    return _resolved[key]
