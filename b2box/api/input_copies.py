"""Local copies of remote inputs while a ``run()`` decorated with ``on_temporary_files`` executes.

b2luigi's ``on_temporary_files`` hands ``run()`` local copies of its inputs. b2box reads local inputs in place
(they are finished outputs; copying them costs time and disk) and downloads only remote ones, each once, into
``scratch_dir``; the copies are removed when ``run()`` ends.
"""

from __future__ import annotations

import contextlib
from typing import Any

_ATTRIBUTE = "_b2box_input_copies"


class InputCopies(contextlib.ExitStack):
    """The downloaded copies of one task's remote inputs; a context manager that removes them."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task = task
        self.local: dict[str, str] = {}

    def path(self, target: Any) -> str:
        """The path ``run()`` reads ``target`` from: a local copy of a remote file, else the target's own path."""
        if not hasattr(target, "commit_upload"):  # not remote
            return str(getattr(target, "path", target))
        key = str(target.path)
        if key not in self.local:
            self.local[key] = self.enter_context(target.get_temporary_input(task=self.task))
        return self.local[key]

    def __enter__(self) -> InputCopies:
        setattr(self.task, _ATTRIBUTE, self)
        return super().__enter__()

    def __exit__(self, *details: Any) -> bool:
        if getattr(self.task, _ATTRIBUTE, None) is self:
            delattr(self.task, _ATTRIBUTE)
        return bool(super().__exit__(*details))


def input_copies(task: Any) -> InputCopies | None:
    """The copies in effect for ``task``, if its ``run()`` is decorated with ``on_temporary_files(inputs=True)``."""
    return getattr(task, _ATTRIBUTE, None)
