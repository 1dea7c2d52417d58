"""b2luigi's ``LocalTarget``: luigi's, plus temporary copies in ``scratch_dir`` for inputs and outputs.

``temporary_path(task=...)`` lets a tool write an output on fast local scratch space; the file is moved
into place when the block ends. Inside a task's ``run()`` "into place" means into the task's staged
output (see :mod:`b2box.api.staging`), so the file appears under its real name only when the whole
``run()`` succeeds, as every b2box output does. ``get_temporary_input(task=...)`` gives a private
copy of an input on scratch space, removed afterwards.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import luigi

from b2box.api.staging import current_staging, partial_name
from b2box.settings.resolved import settings_of


def scratch_dir(task: Any = None) -> str:
    """The ``scratch_dir`` setting (of ``task`` if given), else the system's temporary folder."""
    return settings_of(task).folders.scratch_dir


class LocalTarget(luigi.LocalTarget):
    """A local file, with b2luigi's temporary-file helpers."""

    @property
    def tmp_name(self) -> str:
        """``name-luigi-tmp-<10 digits>.ext``: a fresh temporary name that keeps the file's extensions."""
        name, dot, extensions = os.path.basename(self.path.rstrip("/")).partition(".")
        trailing = "/" if self.path.endswith("/") else ""
        return f"{name}-luigi-tmp-{random.randrange(10_000_000_000):010}{dot}{extensions}{trailing}"

    @contextmanager
    def temporary_path(self, task: Any = None, **tmp_file_kwargs: Any) -> Iterator[str]:
        """A path in ``scratch_dir`` to write this output to; moved into place when the block ends without error."""
        with tempfile.TemporaryDirectory(dir=scratch_dir(task), **tmp_file_kwargs) as folder:
            written = os.path.join(folder, self.tmp_name)
            yield written
            self._move_into_place(written.rstrip("/"), task)

    @contextmanager
    def get_temporary_input(self, task: Any = None, **tmp_file_kwargs: Any) -> Iterator[str]:
        """A private copy of this input in ``scratch_dir``, removed when the block ends."""
        with tempfile.TemporaryDirectory(dir=scratch_dir(task), **tmp_file_kwargs) as folder:
            copy = os.path.join(folder, self.tmp_name).rstrip("/")
            if os.path.isdir(self.path):
                shutil.copytree(self.path, copy)
            else:
                shutil.copy2(self.path, copy)
            yield copy

    def _move_into_place(self, written: str, task: Any) -> None:
        final = os.path.abspath(self.path.rstrip("/"))
        staging = current_staging(task)
        if staging is not None:  # the task's run() commits it with its other outputs
            destination = staging.path_for_file(final).rstrip("/")
            os.makedirs(os.path.dirname(destination), exist_ok=True)
            shutil.move(written, destination)
            return
        # outside a run: copy next to the final name first (scratch may be another disk), then rename at once
        os.makedirs(os.path.dirname(final), exist_ok=True)
        beside = os.path.join(os.path.dirname(final), partial_name(os.path.basename(final)))
        shutil.move(written, beside)
        os.replace(beside, final)
