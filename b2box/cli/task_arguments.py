"""Parameters of the tasks a run starts from, and which task that is, set on the command line.

``b2box run wf.py --count 3`` sets ``count`` of the root task (the one the script passes to ``process()``);
``--Average-count 3`` is luigi's form of the same, naming the family; ``--task Average`` runs another of the
script's task families instead, built from such values. Only the tasks the run starts from take values: a task
made by ``requires()`` inside a batch job must come out the same as in the submitter, which a value given here
(and not in the job) would break.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import luigi
from luigi.task_register import Register, TaskClassException

from b2box.errors import B2BoxError


def _parameters(cls: Any) -> dict[str, Any]:
    return dict(cls.get_params())


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _values(arguments: Sequence[str]) -> list[tuple[str, str | None]]:
    """``--name value`` / ``--name=value`` pairs, in order (None: no value followed); anything else is an error."""
    pairs: list[tuple[str, str | None]] = []
    position = 0
    while position < len(arguments):
        word = arguments[position]
        if not word.startswith("--") or word == "--":
            raise B2BoxError(f"unexpected argument {word!r}: task parameters are given as --name value")
        name, equals, text = word[2:].partition("=")
        value: str | None = text
        if not equals:
            value = None
            if position + 1 < len(arguments) and not arguments[position + 1].startswith("--"):
                position += 1
                value = arguments[position]
        pairs.append((name, value))
        position += 1
    return pairs


def chosen_family(name: str) -> Any:
    """The task class ``--task NAME`` names: one of the script's task families."""
    try:
        cls: Any = Register.get_task_cls(name)
    except TaskClassException:
        known = sorted(
            family
            for family, found in Register._get_reg().items()
            if isinstance(found, type) and not found.__module__.startswith(("luigi", "b2box"))
        )
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.7)
        hint = f"did you mean '{close[0]}'? " if close else ""
        listed = ", ".join(known)
        raise B2BoxError(f"--task {name}: no such task family in the script; {hint}it has: {listed}") from None
    return cls


def apply(tasks: list[Any], arguments: Sequence[str], family: str = "") -> list[Any]:
    """``tasks`` with the values ``arguments`` give (``--task`` ``family``: that family's task instead); an unknown
    option names what would be accepted."""
    if not arguments and not family:
        return tasks
    classes = [chosen_family(family)] if family else list(dict.fromkeys(type(task) for task in tasks))
    given: dict[Any, dict[str, Any]] = {cls: {} for cls in classes}
    for name, text in _values(arguments):
        cls, parameter = _target(name, classes)
        if text is None:
            raise B2BoxError(f"option --{name} needs a value (--{name} VALUE)")
        try:
            given[cls][parameter] = _parameters(cls)[parameter].parse(text)
        except Exception as error:  # luigi's own parsers say what they expected
            problem = f"not a valid value for {cls.__name__}.{parameter} ({error})"
            raise B2BoxError(f"{_option(name)} {text!r}: {problem}") from None
    if family:
        return [_build(classes[0], given[classes[0]])]
    return [task.clone(**given[type(task)]) if given[type(task)] else task for task in tasks]


def _target(name: str, classes: list[Any]) -> tuple[Any, str]:
    """The root class and parameter ``--name`` means: ``--param`` of a root task, or luigi's ``--Family-param``."""
    parameter = name.replace("-", "_")
    owners = [cls for cls in classes if parameter in _parameters(cls)]
    if len(owners) == 1:
        return owners[0], parameter
    for cls in classes:
        prefix = f"{cls.get_task_family()}-"
        if name.startswith(prefix) and name[len(prefix) :].replace("-", "_") in _parameters(cls):
            return cls, name[len(prefix) :].replace("-", "_")
    if len(owners) > 1:
        forms = " or ".join(f"--{cls.get_task_family()}-{name}" for cls in owners)
        raise B2BoxError(f"--{name}: several of the tasks the run starts from have it; say which: {forms}")
    accepted = [_option(parameter) for cls in classes for parameter in _parameters(cls)]
    close = difflib.get_close_matches(_option(name), accepted, n=1, cutoff=0.7)
    hint = f" (did you mean {close[0]}?)" if close else ""
    listed = ", ".join(accepted) or "none"
    roots = ", ".join(cls.get_task_family() for cls in classes)
    raise B2BoxError(
        f"no such option: --{name}{hint}. The run starts from {roots}, whose parameters are: {listed} (luigi's "
        "--Family-param works too; only the tasks the run starts from take values here). A script that reads its "
        "own arguments passes ignore_additional_command_line_args=True to process()."
    )


def _build(cls: Any, values: dict[str, Any]) -> Any:
    family = cls.get_task_family()
    missing = [
        name
        for name, parameter in _parameters(cls).items()
        if name not in values and not parameter.has_task_value(family, name)
    ]
    if missing:
        needed = " ".join(f"{_option(name)} VALUE" for name in missing)
        raise B2BoxError(f"--task {family} needs {needed}")
    task: luigi.Task = cls(**values)
    return task
