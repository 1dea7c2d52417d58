"""Batch backends: send prepared jobs to a batch system and follow them until they end.

A site's own batch system plugs in either as a b2box backend, one module plus one line
``register_backend(name, "package.module:Class", detect=..., settings=...)`` (see
:mod:`b2box.batch.backends.registry`), or as a b2luigi-style ``BatchProcess`` (``batch_system = "custom"``, the
task's ``process_class``); what such a plug-in imports from b2luigi is here: see :mod:`b2box.batch.backends.custom`.
Names are imported when first used, so that importing the registry stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "BatchProcess": ("b2box.batch.backends.custom", "BatchProcess"),
    "JobStatus": ("b2box.batch.backends.custom", "ProcessStatus"),
    "create_executable_wrapper": ("b2box.batch.backends.custom", "create_executable_wrapper"),
    "get_log_file_dir": ("b2box.settings.layout", "get_log_file_dir"),
    "register_backend": ("b2box.batch.backends.registry", "register"),
}

__all__ = ["BatchProcess", "JobStatus", "create_executable_wrapper", "get_log_file_dir", "register_backend"]


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'b2box.batch' has no attribute {name!r}")
    module, attribute = _NAMES[name]
    return getattr(importlib.import_module(module), attribute)
