"""Setting values whose check needs no settings model: a folder given as text, a flag given as a boolean.

Checking a value against the model (:mod:`b2box.settings.model`) first imports pydantic and makes the model: 0.2 s,
a fifth of a rerun with nothing to do, spent to find that ``set_setting("result_dir", "results")`` is a text. A value
that the model would take as it is (of exactly the declared plain type, within its bounds) is seen right here; any
other value, and every error, still goes to the model, so its messages stay the model's. Names are checked as
always (:mod:`b2box.settings.names`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from b2box.settings import declared
from b2box.settings.names import PLUMBING_VARIABLES, check_names
from b2box.settings.sources import ENV_PREFIX


def _text(value: Any) -> bool:
    return type(value) is str


def _texts(value: Any) -> bool:
    return type(value) is list and all(type(item) is str for item in value)


# A declared annotation -> whether a value is what the model takes unchanged (exact types: a bool is no int here).
_PLAIN: dict[str, Callable[[Any], bool]] = {
    "str": _text,
    "PathStr": _text,
    "bool": lambda value: type(value) is bool,
    "int": lambda value: type(value) is int,
    "PositiveInt": lambda value: type(value) is int and value > 0,
    "NonNegativeInt": lambda value: type(value) is int and value >= 0,
    "PositiveFloat": lambda value: type(value) is float and value > 0,  # (an int becomes a float: the model's)
    "list[str]": _texts,
    "list[PathStr]": _texts,
    "dict[str, Any]": lambda value: type(value) is dict and all(type(key) is str for key in value),
}
_OPTIONAL = " | None"


def plainly_valid(key: str, value: Any) -> bool:
    """Whether ``value`` is one the settings model takes for the known setting ``key`` as it is (False: ask the
    model, which may still take it, or says what is wrong)."""
    setting = declared.find(key)
    return setting is not None and _takes(setting, key, value)


def _takes(setting: declared.Declared, key: str, value: Any) -> bool:
    """Whether the model takes ``value`` as it is for ``setting`` (found once by the caller)."""
    if declared.choices(key):
        return False
    annotation = setting.annotation
    if annotation.endswith(_OPTIONAL):
        if value is None:
            return True
        annotation = annotation[: -len(_OPTIONAL)]
    check = _PLAIN.get(annotation)
    return check is not None and check(value)


def checked_file(path: str, data: Any, strict: bool) -> bool:
    """Check a settings file's content without the model when every known key's value is plainly valid (its names
    are checked, as always); False when the model must look at it."""
    if not isinstance(data, dict):
        return False
    for key, value in data.items():
        setting = declared.find(key)
        if setting is not None and not _takes(setting, key, value):  # (unknown keys: only their names are checked)
            return False
    check_names(path, data, strict)
    return True


def no_setting_variables() -> bool:
    """Whether no ``B2BOX_*`` variable other than b2box's own plumbing is set (then the model's reading of the
    environment has nothing to read)."""
    prefix = ENV_PREFIX.lower()
    return not any(
        name.lower().startswith(prefix) and name[len(prefix) :].lower() not in PLUMBING_VARIABLES for name in os.environ
    )
