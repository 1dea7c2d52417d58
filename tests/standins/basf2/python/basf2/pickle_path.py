"""basf2.pickle_path in the stand-in: a path as a plain dict, and to and from a pickle file."""

from __future__ import annotations

import pickle
from typing import Any

from basf2 import Module, Path


def serialize_path(path: Path) -> dict[str, Any]:
    return {"path": [{"type": module.type(), "parameters": module.parameters()} for module in path.modules()]}


def deserialize_path(serialized: dict[str, Any]) -> Path:
    path = Path()
    for module in serialized["path"]:
        path.add_module(Module(module["type"], **module["parameters"]))
    return path


def write_path_to_file(path: Path, file_name: str) -> None:
    with open(file_name, "wb") as handle:
        pickle.dump(serialize_path(path), handle)


def get_path_from_file(file_name: str) -> Path:
    with open(file_name, "rb") as handle:
        return deserialize_path(pickle.load(handle))
