"""Commands found on PATH, looked for once per run and PATH.

Every task of a run asks which batch system ``auto`` means and which Apptainer command its environment uses; a
search of PATH costs a ``stat`` per folder, which at 100,000 tasks is seconds. A new run looks again
(:func:`look_again`), so a command installed between two runs of one script is found.
"""

from __future__ import annotations

import functools
import shutil


@functools.lru_cache(maxsize=32)
def first_on_path(commands: tuple[str, ...], search_path: str) -> str:
    """The first of ``commands`` found on ``search_path``, or empty."""
    return next((command for command in commands if shutil.which(command, path=search_path)), "")


def look_again() -> None:
    """Forget what was found: the next question searches PATH again."""
    first_on_path.cache_clear()
