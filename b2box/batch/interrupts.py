"""Ctrl-C and SIGTERM held back for the moment between starting a job and knowing it.

A run stopped there would leave a job it cannot name: it could neither cancel it now nor find it later. Inside
:func:`held_back` the two signals are noted instead of acted on, and delivered again, to the handlers in effect
before, the moment the block ends.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """Run the block without being interrupted by SIGINT or SIGTERM; a signal that came meanwhile follows it."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread handles signals
        yield
        return
    caught: list[int] = []

    def note(number: int, frame: Any) -> None:
        caught.append(number)

    previous = {number: signal.signal(number, note) for number in _SIGNALS}
    try:
        yield
    finally:
        for held, handler in previous.items():
            signal.signal(held, handler)
        for number in dict.fromkeys(caught):
            signal.raise_signal(number)
