"""A stand-in for basf2, Belle II's analysis software, with just the path API that b2box and b2luigi use.

basf2 cannot be installed here. This package is not basf2: it has basf2's Python names for building a path of
modules (``create_path``, ``Path.add_module``, ``Path.modules``, a module's ``type()`` and
``available_params()``), ``process(path, max_event=...)``, ``print_path``, ``statistics``, ``set_nprocesses``,
``set_log_level``, ``conditions.globaltags``, ``logging.log_level``, ``pickle_path`` and ``version``, and
"processes" events the way a test needs: input files (``-i`` on the ``basf2`` command line, which overrides
``RootInput``'s ``inputFileNames`` as in basf2) and output files are small JSON documents standing in for ROOT files
(``{"standin_root": 1, "events": N, ...}``); ``EventInfoSetter``'s ``evtNumList`` generates events;
``RootOutput`` (``outputFileName``) and ``VariablesToNtuple`` (``fileName``) write their files when the path is
processed, named as their parameters say. ``BELLE2_RELEASE`` names the release.
"""

from __future__ import annotations

import json
import os
from typing import Any

STANDIN_KEY = "standin_root"
OUTPUT_MODULES = {"RootOutput": "outputFileName", "VariablesToNtuple": "fileName"}
INPUT_FILES_VARIABLE = "BASF2_STANDIN_INPUT_FILES"  # set by the basf2 command's -i


class _Parameter:
    def __init__(self, name: str, values: Any) -> None:
        self.name = name
        self.values = values


class Module:
    """One module of a path: its type and parameters."""

    def __init__(self, module_type: str, **parameters: Any) -> None:
        self._type = module_type
        self._parameters = dict(parameters)

    def type(self) -> str:
        return self._type

    def name(self) -> str:
        return self._type

    def param(self, name: str | dict[str, Any], value: Any = None) -> None:
        if isinstance(name, dict):
            self._parameters.update(name)
        else:
            self._parameters[name] = value

    def available_params(self) -> list[_Parameter]:
        return [_Parameter(name, value) for name, value in self._parameters.items()]

    def parameters(self) -> dict[str, Any]:
        return dict(self._parameters)


class Path:
    """A sequence of modules."""

    def __init__(self) -> None:
        self._modules: list[Module] = []

    def add_module(self, module: str | Module, **parameters: Any) -> Module:
        added = module if isinstance(module, Module) else Module(module, **parameters)
        self._modules.append(added)
        return added

    def modules(self) -> list[Module]:
        return list(self._modules)

    def __str__(self) -> str:
        return " -> ".join(module.type() for module in self._modules)


def create_path() -> Path:
    return Path()


def register_module(module_type: str, **parameters: Any) -> Module:
    return Module(module_type, **parameters)


class _Conditions:
    def __init__(self) -> None:
        self.globaltags: list[str] = []


class _Logging:
    def __init__(self) -> None:
        self.log_level = 2  # INFO


conditions = _Conditions()
logging = _Logging()
statistics = "basf2 stand-in statistics: no events processed yet"
_processes = 0


def set_nprocesses(count: int) -> None:
    global _processes
    _processes = count


def set_log_level(level: Any) -> None:
    logging.log_level = level


def print_path(path: Path) -> None:
    print(f"[INFO] basf2 stand-in path: {path}")


def _input_files(path: Path) -> list[str]:
    listed = os.environ.get(INPUT_FILES_VARIABLE, "")
    if listed:  # basf2's -i overrides RootInput's inputFileNames, as gbasf2 uses it on the grid
        return [name for name in listed.split(os.pathsep) if name]
    for module in path.modules():
        if module.type() == "RootInput":
            parameters = module.parameters()
            files = parameters.get("inputFileNames") or parameters.get("inputFileName") or []
            return [files] if isinstance(files, str) else list(files)
    return []


def _events_in(file_name: str) -> int:
    with open(file_name) as handle:
        data = json.load(handle)
    if not isinstance(data, dict) or STANDIN_KEY not in data:
        raise RuntimeError(f"{file_name} is not a (stand-in) ROOT file")
    return int(data["events"])


def process(path: Path, max_event: int = 0) -> None:
    """Process the path: count the events of its input (or generate them), write each output module's file."""
    global statistics
    inputs = _input_files(path)
    events = sum(_events_in(name) for name in inputs)
    for module in path.modules():
        if module.type() == "EventInfoSetter":
            events += sum(module.parameters().get("evtNumList", [0]))
    if max_event:
        events = min(events, max_event)
    for module in path.modules():
        key = OUTPUT_MODULES.get(module.type())
        if key is None:
            continue
        name = module.parameters().get(key) or ("RootOutput.root" if module.type() == "RootOutput" else "ntuple.root")
        document = {
            STANDIN_KEY: 1,
            "events": events,
            "module": module.type(),
            "tree": module.parameters().get("treeName", "tree"),
            "inputs": [os.path.basename(name) for name in inputs],
            "release": os.environ.get("BELLE2_RELEASE", ""),
            "path": str(path),
            "globaltags": list(conditions.globaltags),
        }
        with open(name, "w") as handle:
            json.dump(document, handle)
    statistics = f"basf2 stand-in statistics: {events} events processed by {len(path.modules())} modules"
