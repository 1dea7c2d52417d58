"""Parameter options b2luigi adds to every luigi parameter.

``hashed=True`` puts ``hashed_<md5>`` into output paths instead of the value
(for lists, dicts or strings with ``/``); ``hash_function`` replaces the md5;
``hidden=True`` leaves the parameter out of output paths (insignificant
parameters are hidden by default); ``grouping=True`` lets several tasks that
differ only in this parameter share one batch job.

b2luigi adds these by patching ``luigi.Parameter.__init__``, so that
``b2luigi.IntParameter(hashed=True)`` and ``luigi.IntParameter(hashed=True)``
both work; b2box does the same, once, at import.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

import luigi
from luigi.parameter import _no_value

_PATCHED_MARK = "_b2box_patched"
logger = logging.getLogger("luigi-interface")


def md5_hash(value: Any) -> str:
    """b2luigi's default hash of a parameter value, as it appears in paths."""
    return "hashed_" + hashlib.md5(str(value).encode()).hexdigest()


def grouped_name(values: Any) -> str:
    """Path name of a group of values: their sorted list, or an md5 when long."""
    try:
        joined = "_".join(str(item) for item in sorted(values))
    except TypeError:
        return str(values)
    if len(joined) > 25:
        joined = hashlib.md5(str(values).encode()).hexdigest()
    return "grouped_" + joined


def _as_list(values: Iterable[Any]) -> list[Any]:
    return list(values)


def install() -> None:
    """Teach ``luigi.Parameter`` the b2luigi options (idempotent)."""
    original_init = luigi.Parameter.__init__
    if getattr(original_init, _PATCHED_MARK, False):
        return

    def __init__(
        self: Any,
        *args: Any,
        hashed: bool = False,
        hash_function: Callable[[Any], str] | None = None,
        hidden: bool | None = None,
        grouping: bool = False,
        grouping_function: Callable[[Iterable[Any]], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        original_init(self, *args, **kwargs)
        if hash_function is not None:
            count = len(inspect.signature(hash_function).parameters)
            if count != 1:
                raise ValueError(f"hash_function must take exactly one argument (the value), not {count}.")
        self.hash_function = hash_function
        self.hidden = (not self.significant) if hidden is None else hidden
        if not self.significant and not self.hidden:
            raise ValueError("A parameter cannot be hidden=False and significant=False at once.")
        self.grouping = grouping
        if grouping:
            if getattr(self, "_batch_method", None) is not None:
                logger.warning("Parameter %s: its batch_method is replaced by grouping.", self)
            self._batch_method = grouping_function or _as_list
            if self.hash_function is None:
                self.hash_function = grouped_name
            hashed = True
        if hashed:
            self.serialize_hashed = self._b2box_serialize_hashed

    def _b2box_serialize_hashed(self: Any, value: Any) -> str:
        if self.hash_function is None:
            return md5_hash(value)
        return str(self.hash_function(value))

    setattr(__init__, _PATCHED_MARK, True)
    luigi.Parameter.__init__ = __init__  # type: ignore[method-assign]
    luigi.Parameter._b2box_serialize_hashed = _b2box_serialize_hashed  # type: ignore[attr-defined]


class BoolParameter(luigi.BoolParameter):
    """A BoolParameter that, unlike luigi's, has no implicit default of False."""

    def __init__(self, **kwargs: Any) -> None:
        if any(key in kwargs for key in ("grouping", "grouping_function", "batch_method")):
            raise ValueError("BoolParameter cannot be grouped.")
        kwargs.setdefault("default", _no_value)
        luigi.Parameter.__init__(self, **kwargs)


class BatchIntParameter(luigi.IntParameter):
    """An IntParameter that luigi may group (it does not enumerate its values)."""

    def next_in_enumeration(self, value: Any) -> None:
        return None
