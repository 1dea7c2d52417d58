"""Small facts about images kept between runs in ``~/.cache/b2box/`` (a SIF file's sha256, whether an image has
Python), keyed by what they depend on, so no run pays again for what an earlier one found out."""

from __future__ import annotations

import json
import os
from typing import Any

FOLDER = os.path.join(os.path.expanduser("~"), ".cache", "b2box")


def read(name: str) -> dict[str, Any]:
    """The cache file ``name`` (empty when it is missing or unreadable)."""
    try:
        with open(os.path.join(FOLDER, name), encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def write(name: str, values: dict[str, Any]) -> None:
    """Replace the cache file ``name`` at once (a cache that cannot be written is only a missed saving)."""
    path = os.path.join(FOLDER, name)
    try:
        os.makedirs(FOLDER, exist_ok=True)
        temporary = f"{path}.{os.getpid()}"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(values, handle)
        os.replace(temporary, path)
    except OSError:
        pass
