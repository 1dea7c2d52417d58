"""The house rules of the package layout (docs/architecture.md), checked on the import graph.

Every import of a b2box module counts, also those inside functions: a lazy
import is still a dependency. The rules: no import cycles; a package imports
only packages below it in LAYERS; no module below the root imports the root
(``b2box``); and no module below the settings layer looks a setting up by name.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "b2box"
# Lowest first. A module may import modules of its own layer (without cycles) and of layers before it.
LAYERS = [
    ("b2box.errors", "b2box.version", "b2box.jsonio", "b2box.commands", "b2box.usage"),
    ("b2box.settings",),
    ("b2box.api", "b2box.basf2"),
    ("b2box.env",),
    ("b2box.results",),
    ("b2box.engine",),
    ("b2box.job", "b2box.b2luigi_names"),
    ("b2box.batch",),
    ("b2box.report",),
    ("b2box.cli",),
    ("b2box", "b2box.__main__"),
]
NOT_CODE = ("b2box.templates",)  # files b2box writes for users, not part of the package's code


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(NOT_CODE)}


MODULES = _modules()


def _resolve(name: str) -> str:
    """The module that ``import name`` loads (a name imported from a module is that module)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(module: str) -> Iterator[tuple[str, int]]:
    """The b2box modules ``module`` imports, with line numbers."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "b2box":
                    yield _resolve(alias.name), node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rsplit(".", 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            if base.split(".")[0] != "b2box":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield (candidate if candidate in MODULES else _resolve(base)), node.lineno


GRAPH = {module: {target for target, _ in _imports(module) if target != module} for module in MODULES}


def _layer(module: str) -> int:
    best = -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "b2box" and module.startswith(prefix + ".")):
                best = index
    return best


def test_a_job_loads_b2box_without_pydantic() -> None:
    """A job in an image without b2box runs the host's b2box from the host's site-packages (job/bootstrap.py); a
    compiled library of the host (pydantic_core) may not load in the image's Python, so the job's imports stay
    clear of it (the settings models are read on the submitting side)."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, b2box.job.main; print(*sorted(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert not [name for name in loaded if name.split(".")[0] in ("pydantic", "pydantic_core", "pydantic_settings")]


def test_every_module_belongs_to_a_layer() -> None:
    assert [module for module in MODULES if _layer(module) < 0] == []


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = counter[0]
        counter[0] += 1
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in MODULES:
        if module not in index:
            visit(module)
    assert cycles == []


def test_imports_point_down_the_layers_only() -> None:
    upward = [
        f"{module}:{line} imports {target}"
        for module in MODULES
        for target, line in _imports(module)
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_nothing_below_the_root_imports_the_root() -> None:
    offenders = [
        f"{module}:{line}"
        for module in MODULES
        if _layer(module) < len(LAYERS) - 1
        for target, line in _imports(module)
        if target == "b2box"
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "layer", ["b2box.api", "b2box.env", "b2box.results", "b2box.engine", "b2box.job", "b2box.batch", "b2box.cli"]
)
def test_no_setting_is_looked_up_by_name_below_the_settings_layer(layer: str) -> None:
    users = [
        f"{module}: {path.name}"
        for module, path in MODULES.items()
        if module.startswith(layer + ".") and re.search(r"\bget_setting\b", path.read_text())
    ]
    assert users == []


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 80


def test_no_module_is_longer_than_400_lines() -> None:
    long = {
        module: n for module, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_no_function_is_longer_than_80_lines() -> None:
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def _compared_strings(tree: ast.AST) -> Iterator[tuple[str, int]]:
    """String constants that are compared with something (==, !=, in, not in, match cases)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                for item in items:
                    if isinstance(item, ast.Constant) and isinstance(item.value, str):
                        yield item.value, node.lineno
        elif (
            isinstance(node, ast.MatchValue)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.value.value, node.lineno


def test_no_backend_name_is_compared_outside_the_backends() -> None:
    """What differs between batch systems is a capability each declares, never a test of its name."""
    from b2box.batch.backends import registry

    names = set(registry.names())
    found = [
        f"{module}:{line} compares {value!r}"
        for module, path in MODULES.items()
        if not module.startswith("b2box.batch.backends")
        for value, line in _compared_strings(ast.parse(path.read_text()))
        if value in names
    ]
    assert found == []
