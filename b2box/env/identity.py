"""What a job ran in, as a checkable fact: image reference, content digest, runtime version."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ImageIdentity:
    """The image a job runs in; ``digest`` is the content hash, empty when there is none."""

    runtime: str
    reference: str = ""
    digest: str = ""
    runtime_version: str = ""
    run_reference: str = ""  # what the job starts (an image ID for Docker, so tags cannot move)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class DigestMismatch(Exception):
    """The image resolves to another content digest than the one pinned."""
