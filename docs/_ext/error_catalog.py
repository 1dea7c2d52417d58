"""The ``b2box-errors`` directive: every error message b2box can show a user, read from its source.

An error a user can fix is a :class:`b2box.errors.B2BoxError` (or a subclass) raised with a message that names
the file, setting or task at fault and says what to do, or a message the command line prints through its
``_fail``/``_error`` helpers. This directive finds every such raise and call in ``b2box/`` and lists its message,
with ``{...}`` where a value is filled in, grouped by the module it comes from. New errors appear by themselves.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

from generated_markdown import GeneratedMarkdown, register

_CLI_HELPERS = {"_fail", "_error"}  # the command line's own error exits (b2box/cli only)
_PLACEHOLDER = re.compile(r"\{(?:[^{}]|\{[^{}]*\})*\}")  # a filled-in value; a message of nothing else passes one on


def _error_classes() -> set[str]:
    import b2box
    from b2box.errors import B2BoxError

    for module in pkgutil.walk_packages(b2box.__path__, "b2box."):
        if ".templates" not in module.name and not module.name.endswith(("bootstrap", "__main__")):
            importlib.import_module(module.name)
    found, pending = set(), [B2BoxError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return found


def _template(node: ast.AST) -> str:
    """The message with ``{expression}`` where a value is filled in."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else f"{{{ast.unparse(part.value)}}}"  # type: ignore[attr-defined]
            for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _template(node.left) + _template(node.right)
    return f"{{{ast.unparse(node)}}}"


def messages(root: Path) -> dict[str, list[tuple[str, str]]]:
    """``{module: [(exception or helper, message)]}`` for every user-facing error in the package at ``root``."""
    classes = _error_classes()
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.exc if isinstance(node, ast.Raise) else node
            if not isinstance(call, ast.Call) or not call.args:
                continue
            name = getattr(call.func, "id", getattr(call.func, "attr", ""))
            cli_helper = name in _CLI_HELPERS and isinstance(node, ast.Call) and module.startswith("b2box.cli.")
            if name in classes or cli_helper:
                text = " ".join(_template(call.args[0]).split())
                if _PLACEHOLDER.sub("", text).strip() and (name, text) not in found.get(module, []):
                    found.setdefault(module, []).append((name, text))
    return found


class ErrorCatalog(GeneratedMarkdown):
    """Renders :func:`messages` as one section per module."""

    source = "b2box sources"

    def lines(self) -> list[str]:
        import b2box

        root = Path(inspect.getfile(b2box)).parent
        lines: list[str] = []
        for module, entries in messages(root).items():
            lines += [f"**{module}**", ""]
            for name, text in entries:
                escaped = text.replace("`", "'").replace("<", "&lt;").replace(">", "&gt;")
                escaped = re.sub(r"([*_\\[\]])", r"\\\1", escaped)  # Markdown's emphasis and links
                lines += [f"- `{'command line' if name in _CLI_HELPERS else name}`: {escaped}"]
            lines.append("")
        return lines


def setup(app: Any) -> dict[str, Any]:
    """Sphinx's entry point: registers the ``b2box-errors`` directive."""
    return register(app, "b2box-errors", ErrorCatalog)
