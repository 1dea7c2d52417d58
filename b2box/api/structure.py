"""Turn luigi's nested input/output structures into flat dicts.

``requires()`` and ``output()`` may return a target, a list, a dict, a
generator, or any nesting of those. b2luigi's file helpers see them as
``{key: target}`` (outputs) and ``{key: [targets...]}`` (inputs), where the
key is the name given to ``add_to_output`` or, for a bare target, its file
name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any


def flatten(struct: Any) -> list[Any]:
    """Every leaf of ``struct``; dicts are leaves, so keys survive."""
    if isinstance(struct, dict | str):
        return [struct]
    try:
        iterator = iter(struct)
    except TypeError:
        return [struct]
    leaves: list[Any] = []
    for item in iterator:
        leaves.extend(flatten(item))
    return leaves


def _as_dict(leaf: Any) -> dict[Any, Any]:
    return leaf if isinstance(leaf, dict) else {leaf: leaf}


def flatten_to_dict(struct: Iterable[Any] | Any) -> dict[Any, Any]:
    """``{key: target}``; a later key wins."""
    joined: dict[Any, Any] = {}
    for leaf in flatten(struct):
        joined.update(_as_dict(leaf))
    return joined


def flatten_to_dict_of_lists(struct: Iterable[Any] | Any) -> dict[Any, list[Any]]:
    """``{key: [targets...]}`` keeping every target of a repeated key."""
    joined: dict[Any, list[Any]] = {}
    for leaf in flatten(struct):
        for key, value in _as_dict(leaf).items():
            joined.setdefault(key, []).append(value)
    return joined


def _path_of(item: Any) -> Any:
    return item.path if hasattr(item, "path") else item


def flatten_to_file_paths(
    struct: Iterable[Any] | Any, path_of: Callable[[Any], Any] = _path_of
) -> dict[str, list[str]]:
    """``{file key: [paths...]}``; a bare target's key is its file name; ``path_of`` gives a target's path."""
    return {
        os.path.basename(_path_of(key)): [path_of(value) for value in values]
        for key, values in flatten_to_dict_of_lists(struct).items()
    }
