"""Class decorators that share parameters between tasks, as b2luigi's do.

``@requires(A, p=3)`` makes a task take A's parameters (except the fixed
ones) and require ``A(p=3, ...)``; ``@inherits(A, without="p")`` only takes
the parameters and adds ``clone_parent()``/``clone_parents()``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from typing import Any

import luigi

from b2box.api.input_copies import InputCopies, input_copies
from b2box.api.staging import OutputStaging, active_staging


def _copy_parameters(source: type[luigi.Task], target: type[luigi.Task], skip: Iterable[str]) -> None:
    skipped = set(skip)
    for name, parameter in source.get_params():
        if name not in skipped and not hasattr(target, name):
            setattr(target, name, parameter)


class requires:
    """Require the given tasks, optionally with some of their parameters fixed."""

    def __init__(self, *tasks_to_require: type[luigi.Task], **fixed: Any) -> None:
        self.tasks_to_require = tasks_to_require
        self.kwargs = fixed

    def __call__(self, task_that_requires: type[luigi.Task]) -> type[luigi.Task]:
        for required in self.tasks_to_require:
            _copy_parameters(required, task_that_requires, self.kwargs)
        previous_requires = task_that_requires.requires
        tasks, fixed = self.tasks_to_require, self.kwargs

        def requires(task: luigi.Task) -> Iterable[Any]:
            yield from luigi.task.flatten(previous_requires(task))
            if len(tasks) == 1:
                yield task.clone(cls=tasks[0], **fixed)
            else:
                yield [task.clone(cls=required, **fixed) for required in tasks]

        task_that_requires.requires = requires  # type: ignore[method-assign]
        return task_that_requires


class inherits:
    """Take the parameters of the given tasks, ``without`` some of them."""

    def __init__(self, *tasks_to_inherit: type[luigi.Task], without: str | Iterable[str] | None = None) -> None:
        self.tasks_to_inherit = tasks_to_inherit
        if isinstance(without, str):
            self.without = [without]
        else:
            self.without = list(without or [])

    def __call__(self, task_that_inherits: type[luigi.Task]) -> type[luigi.Task]:
        for inherited in self.tasks_to_inherit:
            _copy_parameters(inherited, task_that_inherits, self.without)
        parents = self.tasks_to_inherit

        def clone_parent(task: luigi.Task, **kwargs: Any) -> luigi.Task:
            return task.clone(cls=parents[0], **kwargs)

        def clone_parents(task: luigi.Task, **kwargs: Any) -> list[luigi.Task]:
            return [task.clone(cls=parent, **kwargs) for parent in parents]

        task_that_inherits.clone_parent = clone_parent  # type: ignore[attr-defined]
        task_that_inherits.clone_parents = clone_parents  # type: ignore[attr-defined]
        return task_that_inherits


def on_temporary_files(
    run_function: Callable[..., Any] | None = None, *, inputs: bool = True, outputs: bool = True
) -> Any:
    """Write outputs under temporary names and move them into place when ``run`` succeeds.

    b2box already does this for every task it runs; the decorator makes it
    hold when ``run()`` is called directly too. Local inputs are read in
    place: they are complete outputs of finished tasks and are never copied;
    remote inputs (``RemoteTarget``) are downloaded to ``scratch_dir`` when
    ``get_input_file_names()`` asks for them (``inputs=True``, as in b2luigi).
    """

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def run(task: Any, *args: Any, **kwargs: Any) -> Any:
            with contextlib.ExitStack() as stack:
                if inputs and input_copies(task) is None:
                    stack.enter_context(InputCopies(task))
                if outputs and active_staging(task) is None:
                    stack.enter_context(OutputStaging(task))
                return function(task, *args, **kwargs)

        return run

    if run_function is None:
        return decorate
    if not callable(run_function):
        raise TypeError("on_temporary_files takes the run function; pass options as keywords.")
    return decorate(run_function)
