"""A task's parameter values as luigi computes them, without luigi's configuration look-ups where there is none.

luigi asks its configuration for every parameter of every task it creates, twice (once to find the task in its
instance cache, once in ``__init__``), and builds the list of configuration sections each time; with a hundred
thousand tasks that is a large share of building the graph. When the configuration has no section for the task's
family, no command line of luigi's is being parsed and no parameter has an older configuration path, the answer is
the given values and the parameters' defaults, which this module computes directly. Anything else, an error
included, is left to luigi, so its behaviour and its messages stay the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import luigi
from luigi import configuration
from luigi.cmdline_parser import CmdlineParser
from luigi.parameter import _no_value

Values = list[tuple[str, Any]]
_PLAIN_LOOKUP = (luigi.Parameter._value_iterator, luigi.Parameter._get_value, luigi.Parameter.task_value)
_plain: dict[type, bool] = {}


def parameter_values(
    family: str,
    params: Sequence[tuple[str, luigi.Parameter]],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    luigis_way: Callable[[], Values],
) -> Values:
    """``[(name, value), ...]`` in parameter order, as ``luigis_way()`` would give it."""
    if args or CmdlineParser.get_instance() is not None or configuration.get_config().has_section(family):
        return luigis_way()
    values, given = [], 0
    for name, parameter in params:
        if name in kwargs:
            value, given = parameter.normalize(kwargs[name]), given + 1
        elif _default_is_final(parameter):
            value = parameter.normalize(parameter._default)
        else:
            return luigis_way()
        values.append((name, tuple(value) if isinstance(value, list | set) else value))
    if given != len(kwargs):
        return luigis_way()  # an unknown parameter among them: luigi's message names it
    return values


def _default_is_final(parameter: luigi.Parameter) -> bool:
    """Whether the parameter's default is its value when the configuration has nothing for it."""
    if parameter._default is _no_value or getattr(parameter, "_config_path", None):
        return False
    kind = type(parameter)
    plain = _plain.get(kind)
    if plain is None:
        plain = _plain[kind] = (kind._value_iterator, kind._get_value, kind.task_value) == _PLAIN_LOOKUP
    return plain
