"""Which batch system a task goes to, and the backend object that talks to it."""

from __future__ import annotations

import importlib
import shutil
from typing import Any

from b2box.batch.backends.base import Backend
from b2box.batch.retry import BatchCalls
from b2box.errors import B2BoxError
from b2box.settings.resolved import run_settings, settings_of

_DETECTION = (("bsub", "lsf"), ("condor_submit", "htcondor"), ("sbatch", "slurm"))


def resolve_batch_system(task: Any) -> str:
    """The task's ``batch_system``; ``auto`` picks the first batch system found here, as b2luigi does."""
    name = settings_of(task).batch_system
    if name == "auto":
        name = next((system for command, system in _DETECTION if shutil.which(command)), "local")
    if name == "apptainer":  # b2luigi's: run the job here, in its apptainer_image, which is what local does
        name = "local"
    return name


def _load_backend(dotted: str) -> Backend:
    """A b2box-native backend named by the ``custom_backend`` setting: ``package.module:Class``, made without
    arguments, with the methods of :class:`~b2box.batch.backends.base.Backend`."""
    module_name, _, class_name = dotted.partition(":")
    try:
        backend = getattr(importlib.import_module(module_name), class_name)()
    except (ImportError, AttributeError, ValueError, TypeError) as problem:
        raise B2BoxError(
            f"setting 'custom_backend' = {dotted!r} cannot be loaded ({problem!r}): name an importable class as "
            "'package.module:Class' whose instances submit, poll, wait, cancel and close jobs"
        ) from None
    missing = [method for method in ("submit", "poll", "wait", "cancel", "close") if not hasattr(backend, method)]
    if missing:
        raise B2BoxError(f"setting 'custom_backend' = {dotted!r}: the class lacks {', '.join(missing)}")
    return backend


def backend_for(name: str, calls: BatchCalls | None = None) -> Backend:
    """The backend for a ``batch_system`` value; its calls go through ``calls`` (the run's retry policy)."""
    calls = calls or BatchCalls(name)
    if name == "local":
        from b2box.batch.backends.local import LocalBackend

        return LocalBackend()
    if name == "htcondor":
        from b2box.batch.backends.htcondor import HTCondorBackend

        interface = run_settings().htcondor_interface
        return HTCondorBackend(use_bindings={"auto": None, "bindings": True, "cli": False}[interface], calls=calls)
    if name == "slurm":
        from b2box.batch.backends.slurm import SlurmBackend

        return SlurmBackend(calls)
    if name == "lsf":
        from b2box.batch.backends.lsf import LSFBackend

        return LSFBackend(calls)
    if name == "gbasf2":
        from b2box.batch.backends.gbasf2 import Gbasf2Backend

        return Gbasf2Backend(calls)
    if name == "custom":
        from b2box.batch.backends.custom import ProcessBackend

        dotted = run_settings().custom_backend
        return _load_backend(dotted) if dotted else ProcessBackend()
    raise B2BoxError(
        f"batch_system {name!r} is not available in this version of b2box; use 'local', 'htcondor', 'slurm', "
        "'lsf', 'gbasf2' or 'custom'."
    )
