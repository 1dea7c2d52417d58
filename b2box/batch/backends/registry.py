"""Every batch system b2box can send tasks to, one line each: the only list of them.

A line names the backend (the ``batch_system`` value), where its class lives (imported only when a run uses it),
the command-line tool it needs (which ``b2box info`` looks for, and whose presence makes ``batch_system = "auto"``
choose it, in the order of the lines, unless ``auto=False``) and where its own settings are declared. The valid
values of the ``batch_system`` setting, the ``auto`` detection, the list in error messages and ``b2box info`` all
come from here, so a new batch system is its module plus one :func:`register` line, here or in a site's own
code (``b2box.batch.register_backend``).
"""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from b2box.commands import first_on_path, look_again
from b2box.errors import B2BoxError
from b2box.results import identity
from b2box.settings import declared
from b2box.settings.resolved import settings_of

if TYPE_CHECKING:
    from b2box.batch.backends.base import Backend
    from b2box.batch.retry import BatchCalls

AUTO = "auto"


@dataclass(frozen=True)
class Registration:
    """One batch system: its ``batch_system`` name, its class, and what ``auto`` looks for."""

    name: str
    location: str  # "package.module:Name", called with the run's BatchCalls to make the backend
    command: str = ""  # the command-line tool it needs (b2box info looks for it)
    auto: bool = True  # whether ``batch_system = "auto"`` chooses it where its command is found
    settings: str = ""  # "package.module:Group": the backend's own settings (a b2box.settings.declared.SettingGroup)
    # whether it decides the environment its tasks' results are made in (the grid: the release), not their spec;
    # None: its class is asked (a ``result_environment`` method), which imports it
    decides_environment: bool | None = None


_registered: dict[str, Registration] = {}
_aliases: dict[str, str] = {}
_order: list[str] = []  # every valid name (registrations and aliases), in the order they were added


def _named(name: str) -> None:
    if name not in _order:
        _order.append(name)
    declared.add_choices("batch_system", [AUTO, *_order])


def register(
    name: str,
    location: str,
    command: str = "",
    auto: bool = True,
    settings: str = "",
    decides_environment: bool | None = None,
) -> None:
    """Add (or replace) a batch system; its settings join the settings model when it is next made."""
    _registered[name] = Registration(name, location, command, auto, settings, decides_environment)
    _deciding.pop(name, None)
    if settings:
        declared.add_loader(lambda: _load(settings))
    _named(name)
    detect_again()


def alias(name: str, meaning: str) -> None:
    """Another name of a registered batch system (b2luigi's ``apptainer`` runs jobs here, as ``local`` does)."""
    _aliases[name] = meaning
    _named(name)


def names() -> list[str]:
    """The registered batch systems, in detection order."""
    return list(_registered)


def registration(name: str) -> Registration:
    """The registration of a batch system (or of an alias's meaning); an unknown name is a clear error."""
    found = _registered.get(_aliases.get(name, name))
    if found is None:
        raise B2BoxError(f"batch_system {name!r} is not available in this version of b2box; use {_listed(names())}.")
    return found


def resolve(requested: str) -> str:
    """The backend a ``batch_system`` value means: ``auto`` picks the first batch system found here (as b2luigi
    does, else ``local``; looked for once per run and PATH), an alias its meaning."""
    if requested == AUTO:
        return _detected(os.environ.get("PATH", ""))
    return _aliases.get(requested, requested)


def detect_again() -> None:
    """Forget which batch system ``auto`` found: a new run looks again (a run looks once, see :func:`resolve`)."""
    look_again()
    _detected.cache_clear()


@functools.lru_cache(maxsize=8)
def _detected(search_path: str) -> str:
    """The first auto-detectable batch system whose command is on ``search_path`` (answered once per PATH until
    :func:`detect_again` or a registration: a graph asks for every task)."""
    candidates = [entry for entry in _registered.values() if entry.auto and entry.command]
    command = first_on_path(tuple(entry.command for entry in candidates), search_path)
    return next((entry.name for entry in candidates if command and entry.command == command), "local")


def choice(name: str) -> str:
    """Where a run's jobs of batch system ``name`` go and, where ``auto`` would choose the same, what it found."""
    search_path = os.environ.get("PATH", "")
    automatic = _detected(search_path) == name
    if name == "local":
        commands = [entry.command for entry in _registered.values() if entry.auto and entry.command]
        why = f": 'auto' finds none of {', '.join(commands)} on PATH" if automatic else ""
        return f"jobs run on this machine (batch_system 'local'{why})"
    command = registration(name).command
    found = shutil.which(command, path=search_path) if command else None
    return f"jobs go to {name}" + (f" ({command}: {found})" if found else "")


def batch_system_of(task: Any) -> str:
    """The backend the task's ``batch_system`` setting means here (``auto`` detected, aliases resolved)."""
    return resolve(settings_of(task).batch_system)


def backend_type(name: str) -> Any:
    """The class (or factory) of a registered backend, imported now."""
    return _load(registration(name).location)


def create(name: str, calls: BatchCalls) -> Backend:
    """A backend object for this run, its calls under the run's retry policy."""
    backend: Backend = backend_type(name)(calls)
    return backend


def registered() -> list[Registration]:
    """Every registration, in order."""
    return list(_registered.values())


def result_environment(task: Any) -> tuple[str, str] | None:
    """The environment a result of ``task`` is made in where its batch system decides it (the grid: the basf2
    release), as (digest, label); None where the task's own environment spec does (b2box.results.identity)."""
    name = batch_system_of(task)
    decides = _deciding.get(name)
    if decides is None:  # (a local run of tasks without environments imports no backend to learn it)
        stated = registration(name).decides_environment
        decides = callable(getattr(backend_type(name), "result_environment", None)) if stated is None else stated
        _deciding[name] = decides
    return backend_type(name).result_environment(task) if decides else None


_deciding: dict[str, bool] = {}  # backend name -> whether it decides its results' environment


def _load(location: str) -> Any:
    module_name, _, attribute = location.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def _listed(values: list[str]) -> str:
    quoted = [repr(value) for value in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)


# The batch systems of b2box; ``auto`` looks for their commands in this order: LSF, HTCondor, Slurm (b2luigi's).
_HERE = "b2box.batch.backends"
register("local", f"{_HERE}.local:LocalBackend", decides_environment=False)
register("lsf", f"{_HERE}.lsf:LSFBackend", command="bsub", settings=f"{_HERE}.lsf:LSFSettings",
         decides_environment=False)  # fmt: skip
register("htcondor", f"{_HERE}.htcondor:HTCondorBackend", command="condor_submit",
         settings=f"{_HERE}.htcondor:HTCondorSettings", decides_environment=False)  # fmt: skip
register("slurm", f"{_HERE}.slurm:SlurmBackend", command="sbatch", settings=f"{_HERE}.slurm:SlurmSettings",
         decides_environment=False)  # fmt: skip
register("gbasf2", f"{_HERE}.gbasf2.backend:Gbasf2Backend", command="gbasf2", auto=False,
         settings=f"{_HERE}.gbasf2.settings:Gbasf2Settings", decides_environment=True)  # fmt: skip
alias("apptainer", "local")  # b2luigi's name: the job runs here, in its Apptainer image
register("custom", f"{_HERE}.custom:custom_backend", settings=f"{_HERE}.custom:CustomSettings",
         decides_environment=False)  # fmt: skip
identity.decide_environment_with(result_environment)
