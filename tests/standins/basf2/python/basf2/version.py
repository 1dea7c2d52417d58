"""basf2.version in the stand-in: the release set up (BELLE2_RELEASE)."""

import os


def get_version() -> str:
    return os.environ.get("BELLE2_RELEASE", "head")


version = get_version()
