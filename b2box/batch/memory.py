"""A job's memory request from attempt to attempt: the task's ``request_memory`` first, grown after a kill for memory.

A job killed for memory dies again with the same request, so with ``memory_growth`` set it comes back asking for
more: its request (or, without one, what it was seen to use) times the growth, up to ``max_memory`` (default: eight
times the first request). Such resubmissions do not use up ``retries``; they go out together with the other jobs of
their wave, grouped by request, never one submission per job.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from b2box.settings.resolved import settings_of
from b2box.settings.sizes import human_size

DEFAULT_CAP = 8  # max_memory unset: this many times the first request


def grown_request(task: Any, request: int | None, used: int | None) -> int | None:
    """The request of the next job of a task killed for memory: larger by ``memory_growth``; None when that is not
    set, nothing is known to grow from, or the request already reached ``max_memory``."""
    batch = settings_of(task).batch
    base = request or used
    if not batch.memory_growth or not base:
        return None
    cap = batch.max_memory or (batch.request_memory or base) * DEFAULT_CAP
    if request is not None and request >= cap:
        return None
    return min(int(base * batch.memory_growth), cap)


def killed_for_memory(used: int | None, requested: int | None) -> str:
    """The words for a job the kernel or the batch system killed for memory."""
    said = f"used {human_size(used)}" if used else "its use was not measured"
    asked = f", requested {human_size(requested)}" if requested else ", no request_memory set"
    return f"killed for memory: {said}{asked}"


def with_request(
    task: Any,
    request: int | None,
    options: Mapping[str, Any],
    keys: tuple[str, ...],
    entry: tuple[str, str],
    where: str,
) -> dict[str, Any]:
    """A batch system's ``options`` with the memory ``request`` added as ``entry`` (its key and value in that
    system's words); an option of its own among ``keys`` wins, with a warning naming both (once per family)."""
    merged = dict(options)
    if request is None:
        return merged
    own = next((key for key in merged if str(key).lower() in keys), None)
    if own is None:
        merged[entry[0]] = entry[1]
    else:
        warnings.warn(
            f"{task.task_family}: {where} {own!r} = {merged[own]!r} wins over request_memory "
            f"({human_size(request)}); drop one of them to silence this",
            MemorySettingWarning,
            stacklevel=2,
        )
    return merged


class MemorySettingWarning(UserWarning):
    """A batch system's own memory option overrides ``request_memory``."""
