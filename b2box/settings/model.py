"""The typed model of every setting, made from their declarations, and the checks that name the source at fault.

Settings are declared once, in plain Python (:mod:`b2box.settings.declared`): the settings every task has in
:mod:`b2box.settings.general`, each batch system's next to its backend. This module turns all declarations into one
pydantic model, :func:`settings_model`, made anew when a declaration is added (a batch system registered by a
site's own code, say). It is kept apart from :mod:`b2box.settings.lookup` so that a job process never imports
pydantic: jobs run with settings that were validated when they were submitted, and b2box's job side stays pure
Python, which lets the host's installation be mounted into images with another Python version.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import itertools
import os
import re
import textwrap
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_settings import BaseSettings, SettingsConfigDict

from b2box.errors import SettingsError
from b2box.settings import declared, types
from b2box.settings.names import (
    PLUMBING_VARIABLES,
    check_names,
    is_unknown,
    known_settings,
    report_no_effect,
    report_unknown,
)
from b2box.settings.sources import CUSTOM_SECTION, ENV_PREFIX


class _EnvironmentBase(BaseSettings):
    """The model's fields read from ``B2BOX_*`` environment variables by pydantic-settings."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", case_sensitive=False)


_models: dict[tuple[int, bool], tuple[type[BaseModel], type[BaseSettings]]] = {}


def settings_model(documented: bool = True) -> type[BaseModel]:
    """Every setting with its type, default and (``documented``) documentation, as one pydantic model
    ("SettingValues"). Checking values needs no documentation, and reading it costs a parse of every declaring
    module: a run asks for the model without it."""
    return _made(documented)[0]


def _checking_model() -> type[BaseModel]:
    return _made(False)[0]


def _environment_model() -> type[BaseSettings]:
    return _made(False)[1]


def _made(documented: bool) -> tuple[type[BaseModel], type[BaseSettings]]:
    declared.groups()  # loaders first: they may add groups and choices
    key = (declared.version(), documented)
    if key not in _models:
        fields: dict[str, Any] = {}
        for group in declared.groups():
            documentation = _attribute_docstrings(group) if documented else {}
            for name, setting in group.declared.items():
                annotation = _annotation(setting)
                fields[name] = (annotation, Field(default=setting.default, description=documentation.get(name)))
        config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)
        model = create_model("SettingValues", __config__=config, **fields)
        environment = create_model("EnvironmentSettings", __base__=_EnvironmentBase, **fields)
        for stale in [made for made in _models if made[0] != key[0]]:
            del _models[stale]
        _models[key] = (model, environment)
    return _models[key]


def _annotation(setting: declared.Declared) -> Any:
    """A declaration's annotation as a type (a fixed list of choices made at run time becomes a Literal)."""
    choices = declared.choices(setting.name)
    if choices:
        return Literal[choices]
    try:
        return eval(setting.annotation, {"__builtins__": builtins}, types.NAMES)
    except Exception as error:
        raise TypeError(f"setting {setting.name!r} of {setting.group.__qualname__}: annotation {setting.annotation!r} "
                        f"uses a name b2box.settings.types does not have ({error})") from None  # fmt: skip


def _attribute_docstrings(group: type) -> dict[str, str]:
    """The string after each annotated attribute of a group's class body: that setting's documentation."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(group)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    found = {}
    for node, after in itertools.pairwise(body):
        text = after.value.value if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) else None
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(text, str):
            found[node.target.id] = inspect.cleandoc(text)
    return found


# ----------------------------------------------------------------------------------------------------
# Errors that name the source


def _describe(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    hint = ""
    if error.get("type") == "literal_error":
        message = message.replace("Input should be", "must be one of:")
        expected = [str(value) for value in (error.get("ctx") or {}).get("expected_values", ())]
        if not expected:  # pydantic lists them only in its message: 'a', 'b' or 'c'
            expected = re.findall(r"'([^']*)'", message)
        close = difflib.get_close_matches(str(error.get("input")), expected, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{message} (got {error.get('input')!r}{hint})"


def _raise_for(source: str, exc: ValidationError) -> None:
    problems = [f"setting '{error['loc'][0] if error['loc'] else '?'}': {_describe(error)}" for error in exc.errors()]
    raise SettingsError(f"{source}: " + "; ".join(problems) + ". Fix it there and run again.")


def validate_file_content(path: str, data: Any, strict: bool = False) -> dict[str, Any]:
    """A settings file's content, checked against the model; errors name the file and the key.

    Keys of the user's own (b2luigi allows them at the top level) are kept for ``get_setting``, with a warning
    naming the known key they resemble; ``strict`` makes them an error.
    """
    if not isinstance(data, dict):
        raise SettingsError(
            f'{path}: a settings file must hold one JSON object ({{"result_dir": ...}}), '
            f"not {type(data).__name__}. Fix the file and run again."
        )
    check_names(path, data, strict)
    try:
        known = known_settings()
        _checking_model().model_validate({key: value for key, value in data.items() if key in known})
    except ValidationError as exc:
        _raise_for(path, exc)
    if not isinstance(data.get(CUSTOM_SECTION, {}), dict):
        raise SettingsError(f'{path}: "{CUSTOM_SECTION}" must be an object of your own settings.')
    return data


def environment_values(strict: bool = False) -> dict[str, Any]:
    """``B2BOX_*`` variables, typed by pydantic-settings; errors name the variable, unknown names are reported."""
    try:
        parsed = _environment_model()()
    except ValidationError as exc:
        problems = [f"{ENV_PREFIX}{str(e['loc'][0]).upper()}: {_describe(e)}" for e in exc.errors()]
        raise SettingsError("environment: " + "; ".join(problems) + ". Fix or unset the variable.") from None
    except Exception as exc:  # pydantic-settings reports JSON errors of complex fields this way
        raise SettingsError(
            f'environment: {exc}. Values of list and dict settings must be JSON, e.g. {ENV_PREFIX}ENV=\'{{"A": "1"}}\'.'
        ) from None
    values = {name: getattr(parsed, name) for name in parsed.model_fields_set}
    own = {name.lower() for name in values}
    variables = [f"{ENV_PREFIX}{known.upper()}" for known in known_settings()]
    by_lower_case = {known.lower(): known for known in known_settings()}
    for name, value in os.environ.items():
        key = name[len(ENV_PREFIX) :].lower()
        if not name.startswith(ENV_PREFIX) or key in PLUMBING_VARIABLES:
            continue
        key = by_lower_case.get(key, key)
        if is_unknown(key):
            report_unknown("environment", key, strict, shown=name, known=variables)
        else:
            report_no_effect(f"environment ({name})", key)
        if key not in own:
            values.setdefault(key, value)
    return values


def check_value(key: str, value: Any, strict: bool = False) -> None:
    """A ``set_setting`` value of a known key must have the key's type; an unknown key is reported."""
    check_names(f"set_setting('{key}')", [key], strict)
    if key not in known_settings() or key == CUSTOM_SECTION:
        return
    try:
        _checking_model().model_validate({key: value})
    except ValidationError as exc:
        raise SettingsError(
            f"set_setting('{key}', {value!r}): {_describe(exc.errors()[0])}. Pass a value of that type."
        ) from None


_checked_values: dict[tuple[str, str, str], Any] = {}


def checked_task_value(task_class: str, key: str, value: Any) -> Any:
    """A value that a task defines itself, checked against (and converted to) the setting's type.

    Results are remembered by value: the many tasks of a family share their class attributes.
    """
    if key not in known_settings() or key == CUSTOM_SECTION:
        return value
    try:
        memo = (key, type(value).__qualname__, repr(value))
    except Exception:  # a value without a usable repr: check it every time
        memo = None
    if memo is not None and memo in _checked_values:
        return _checked_values[memo]
    try:
        checked = getattr(_checking_model().model_validate({key: value}), key)
    except ValidationError as exc:
        raise SettingsError(
            f"task {task_class}: attribute '{key}': {_describe(exc.errors()[0])}. "
            "Give the attribute a value of the setting's type."
        ) from None
    if memo is not None:
        _checked_values[memo] = checked
    return checked
