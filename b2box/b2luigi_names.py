"""b2luigi's module names, provided by b2box: an unmodified b2luigi script runs under ``b2box run``.

``import b2luigi``, ``from b2luigi.basf2_helper import Basf2PathTask``, ``from b2luigi.core.utils import ...``,
``from b2luigi.batch.processes import BatchProcess``: each module path of b2luigi 1.3 that its documentation and
examples import is a view of the matching part of b2box (:data:`MODULES`): the same objects, so a task class is one
class whichever name it was imported by. :func:`install` puts a finder in front of Python's, so these names win
over a real b2luigi installed in the same environment; ``b2box run``, ``python -m b2box SCRIPT`` and every job of
such a run call it, ``python script.py`` does not (a real b2luigi then is b2luigi). The same views are always
importable under ``b2box`` (``from b2box.basf2_helper import Basf2PathTask``), for scripts changed by hand to
``import b2box as b2luigi``.

A b2luigi module or name b2box does not provide fails with a message naming it and b2box's way to the same end.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import re
import sys
import types
from collections.abc import Sequence
from typing import Any

# b2luigi module -> (b2box modules whose public names it has, {name: "b2box.module:attribute"} besides)
MODULES: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "": (("b2box",), {}),
    "core": ((), {}),
    "core.task": (("b2box.api.task",), {}),
    "core.target": (("b2box.api.targets",), {}),
    "core.temporary_wrapper": (("b2box.api.decorators",), {}),
    "core.dispatchable_task": (("b2box.api.dispatch",), {}),
    "core.parameter": (("b2box.api.parameters",), {"wrap_parameter": "b2box.api.parameters:install"}),
    "core.settings": (
        ("b2box.settings.lookup",),
        {"DeprecatedSettingsWarning": "b2box.errors:DeprecatedSettingsWarning"},
    ),
    "core.executable": ((), {"create_executable_wrapper": "b2box.batch:create_executable_wrapper"}),
    "core.utils": (
        ("b2box.api.structure", "b2box.settings.layout"),
        {
            "map_folder": "b2box.settings.paths:map_folder",
            "create_output_dirs": "b2box.api.staging:create_output_dirs",
            # (b2luigi's documentation of remote targets imports it by this name, which b2luigi itself lacks)
            "create_output_filename": "b2box.settings.layout:create_output_file_name",
        },
    ),
    "core.remote_target": (("b2box.api.remote",), {}),
    "core.remote_target.xrootd": (("b2box.api.remote.xrootd",), {}),
    "core.remote_target.webdav": (("b2box.api.remote.webdav",), {}),
    "batch": ((), {"BatchProcess": "b2box.batch:BatchProcess", "JobStatus": "b2box.batch:JobStatus"}),
    "batch.processes": ((), {"BatchProcess": "b2box.batch:BatchProcess", "JobStatus": "b2box.batch:JobStatus"}),
    "contrib": ((), {}),
}
for _prefix in ("basf2_helper", "contrib.basf2"):  # (1.3 moved basf2_helper to contrib.basf2; both are imported)
    MODULES[_prefix] = (("b2box.basf2",), {})
    MODULES[f"{_prefix}.tasks"] = (("b2box.basf2.tasks",), {})
    MODULES[f"{_prefix}.targets"] = (("b2box.basf2.targets",), {})
    MODULES[f"{_prefix}.utils"] = (("b2box.basf2.release",), {})

# b2luigi modules b2box has no view of, and what does their job in b2box
ELSEWHERE = {
    "batch.processes.lsf": "b2box's own LSF backend: set batch_system = 'lsf' (there is no class to import)",
    "batch.processes.htcondor": "b2box's own HTCondor backend: set batch_system = 'htcondor'",
    "batch.processes.slurm": "b2box's own Slurm backend: set batch_system = 'slurm'",
    "batch.processes.gbasf2": "b2box's own gbasf2 backend: set batch_system = 'gbasf2'",
    "batch.processes.apptainer": "batch_system = 'apptainer', or any batch system with an Apptainer image",
    "batch.processes.test": "nothing: b2box has no test batch system (run without --batch)",
    "batch.workers": "b2box.batch.register_backend for a batch system of your own",
    "batch.cache": "nothing: b2box asks for all jobs' states in one query, without a cache",
    "cli": "the b2box command: b2box run SCRIPT (and status, show, remove, graph, report)",
    "contrib.polars": "nothing yet: b2box has no polars parameters",
}
# names of provided b2luigi modules that b2box lacks, and what to use instead
MISSING_NAMES = {
    "ParameterGenerator": "b2box has no parameters.py of b2luigi's command; pass parameters on the command line "
    "(b2box run SCRIPT --task FAMILY --name VALUE) or build the tasks in the script",
    "ZippedParameterGenerator": "build the zipped tasks in the script (zip(...))",
    "product_dict": "itertools.product over the value lists",
    "task_iterator": "b2box status --tree, or luigi.task.flatten(task.requires()) recursively",
    "NotCompletedTask": "b2box.Task: b2box checks the requirements of every task before it runs",
    "with_new_settings": "b2box.set_setting and b2box.clear_setting around the code",
    "run_task_remote": "b2box.dispatch (runs a task's run() in a child process)",
    "TemporaryFileContextManager": "b2box.on_temporary_files (every output of b2box is staged anyway)",
}


def _public(module: types.ModuleType) -> list[str]:
    found = getattr(module, "__all__", None)
    return list(found) if found is not None else [name for name in vars(module) if not name.startswith("_")]


class _View(types.ModuleType):
    """A b2luigi module as b2box provides it: its names are read from b2box's modules when asked for."""

    def __init__(self, name: str, sources: Sequence[str], extra: dict[str, str]) -> None:
        super().__init__(name, f"b2luigi's {name}, provided by b2box")
        self._sources = tuple(sources)
        self._extra = dict(extra)
        self.__all__ = sorted({*self._extra, *(name for source in self._sources for name in _public(_load(source)))})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name not in self.__all__:
            raise AttributeError(name)
        if name in self._extra:
            module, _, attribute = self._extra[name].partition(":")
            return getattr(_load(module), attribute)
        for source in self._sources:
            found = getattr(_load(source), name, _NOTHING)
            if found is not _NOTHING:
                return found
        hint = f"; instead: {MISSING_NAMES[name]}" if name in MISSING_NAMES else ""
        raise AttributeError(f"b2box does not provide {self.__name__}.{name}{hint}")


_NOTHING = object()
_REAL = {"", "batch"}  # b2luigi names that are b2box's own modules under b2box: never shadowed


def _load(name: str) -> types.ModuleType:
    return sys.modules.get(name) or importlib.import_module(name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds b2luigi's module names under the prefixes it serves (``b2box.`` always, ``b2luigi`` once installed)."""

    def __init__(self) -> None:
        self.prefixes = ["b2box."]

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        for prefix in self.prefixes:
            if fullname == prefix.rstrip(".") and prefix == "b2luigi.":
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            if fullname.startswith(prefix):
                relative = fullname[len(prefix) :]
                if relative in MODULES and not (prefix == "b2box." and relative in _REAL):
                    return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
                if prefix == "b2luigi.":
                    raise ModuleNotFoundError(_not_provided(fullname, relative), name=fullname)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        relative = spec.name.partition(".")[2] if spec.name.startswith("b2luigi.") else ""
        if spec.name.startswith("b2box."):
            relative = spec.name[len("b2box.") :]
        sources, extra = MODULES[relative]
        return _View(spec.name, sources, extra)

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: a view reads b2box's modules when a name is asked for."""


def _not_provided(fullname: str, relative: str) -> str:
    for known, instead in ELSEWHERE.items():
        if relative == known or relative.startswith(known + "."):
            return f"b2box does not provide {fullname}; instead: {instead}"
    provided = ", ".join(sorted(f"b2luigi.{name}" for name in MODULES if name))
    return f"b2box does not provide {fullname} (it provides b2luigi, {provided})"


_finder = _Finder()


def serve_b2box_names() -> None:
    """Make ``b2box.basf2_helper`` and b2luigi's other module paths importable under ``b2box`` (at import)."""
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def hint(error: ImportError) -> str:
    """What to use instead of a name ``from b2luigi... import`` could not find (empty: nothing known)."""
    if not str(error.name or "").startswith(("b2luigi", "b2box.")):
        return ""
    found = re.search(r"cannot import name '(\w+)'", str(error))
    if found and found.group(1) in MISSING_NAMES:
        return f"b2box does not provide {found.group(1)}; instead: {MISSING_NAMES[found.group(1)]}"
    return ""


def install() -> None:
    """From now on ``b2luigi`` and its module paths are b2box's, also where a real b2luigi is installed."""
    serve_b2box_names()
    if "b2luigi." not in _finder.prefixes:
        _finder.prefixes.append("b2luigi.")
    for name in [name for name in sys.modules if name == "b2luigi" or name.startswith("b2luigi.")]:
        if not isinstance(sys.modules[name], _View):
            del sys.modules[name]  # a real b2luigi imported before: the script gets b2box's


def installed() -> bool:
    """Whether ``b2luigi`` is b2box's in this process (its jobs then get the same)."""
    return "b2luigi." in _finder.prefixes
