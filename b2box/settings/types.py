"""The types settings are declared with, as the settings model checks them (pydantic; submitting side only).

Declarations name these in their annotations, which stay text at run time (``from __future__ import
annotations``); :mod:`b2box.settings.model` reads them with this module's names. Modules that declare settings
import it only for type checking, so jobs never import pydantic.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, NonNegativeInt, PositiveFloat, PositiveInt
from pydantic_settings import NoDecode

from b2box.settings.sizes import parse_size


def _fspath(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _split_words(value: Any) -> Any:
    """Accept ``"--nv --cleanenv"`` as well as ``["--nv", "--cleanenv"]``."""
    return value.split() if isinstance(value, str) else value


def _memory_size(value: Any) -> Any:
    """A memory size as written (``"2 GB"``, 2048), checked; kept as written (jobs read it without pydantic)."""
    if value is not None:
        parse_size(value)
    return value


PathStr = Annotated[str, BeforeValidator(_fspath)]
Words = Annotated[list[str], NoDecode, BeforeValidator(_split_words)]
ExitStatus = Annotated[int, Field(ge=0, le=255)]
MemorySize = Annotated[int | float | str, BeforeValidator(_memory_size)]
Growth = Annotated[float, Field(gt=1.0)]

# Every name an annotation of a declaration may use.
NAMES: dict[str, Any] = {
    "Any": Any,
    "Annotated": Annotated,
    "Literal": Literal,
    "Field": Field,
    "PositiveInt": PositiveInt,
    "NonNegativeInt": NonNegativeInt,
    "PositiveFloat": PositiveFloat,
    "PathStr": PathStr,
    "Words": Words,
    "ExitStatus": ExitStatus,
    "MemorySize": MemorySize,
    "Growth": Growth,
}
