"""The ``b2box-settings`` directive: the settings reference, generated from b2box's settings model.

Every field of the settings model (:func:`b2box.settings.model.settings_model`, made from every declared setting)
becomes one entry: its name (with an anchor), type, default, and its docstring, which says what the setting does
and what reads it; settings b2box accepts from b2luigi without using them say so. tests/test_docs.py checks that
every setting appears.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from generated_markdown import GeneratedMarkdown, register


def _type_name(annotation: Any) -> str:
    """A readable type: ``str | None``, ``list[str]``, ``'auto' | 'local'``; validators and bounds left out."""
    origin, arguments = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(arguments[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(argument) for argument in arguments)
    if origin is typing.Literal:
        return " | ".join(repr(argument) for argument in arguments)
    if origin is not None:
        inner = ", ".join(_type_name(argument) for argument in arguments)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


class SettingsReference(GeneratedMarkdown):
    """Renders every setting of the model as a definition list, grouped as the model groups them."""

    source = "settings model"

    def lines(self) -> list[str]:
        from b2box.settings.model import settings_model
        from b2box.settings.names import NO_EFFECT

        lines: list[str] = []
        for name, field in settings_model().model_fields.items():
            annotation = _type_name(field.annotation)
            lines += [
                f"({name})=",
                f"`{name}`",
                f":   **type** `{annotation}`, **default** `{_default(field.default)}`",
                "",
                *[f"    {line}" for line in (field.description or "").splitlines()],
            ]
            if name in NO_EFFECT:
                lines += ["", f"    *No effect in b2box*: {NO_EFFECT[name]}."]
            lines.append("")
        return lines


def setup(app: Any) -> dict[str, Any]:
    """Sphinx's entry point: registers the ``b2box-settings`` directive."""
    return register(app, "b2box-settings", SettingsReference)
