"""``Task``: luigi's task plus b2luigi's file helpers.

Outputs are declared with ``yield self.add_to_output("name.ext")`` and land
in ``<result_dir>/<param>=<value>/.../name.ext``; inputs are found by the
same names with ``get_input_file_names``. Everything else is luigi's.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import luigi

from b2box.api.input_copies import input_copies
from b2box.api.parameter_values import parameter_values
from b2box.api.staging import OutputStaging, active_staging, create_output_dirs
from b2box.api.structure import flatten_to_dict, flatten_to_dict_of_lists, flatten_to_file_paths
from b2box.api.targets import LocalTarget
from b2box.settings import layout
from b2box.settings.resolved import settings_of

_PARAMS_CACHE: dict[tuple[type, int], list[tuple[str, luigi.Parameter]]] = {}


class Task(luigi.Task):
    """A luigi task with b2luigi's output layout and file helpers (drop-in for ``b2luigi.Task``)."""

    #: Run up to this many tasks that differ only in ``grouping=True`` parameters in one batch job.
    max_grouping_size: int = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.max_batch_size = cls.max_grouping_size

    @classmethod
    def get_params(cls) -> list[tuple[str, luigi.Parameter]]:
        """luigi's parameter list, remembered per class: luigi rebuilds it with ``dir()`` on every
        call, which made it the largest cost of large workflows. The key includes the class's own
        attribute count, so parameters attached later (``@requires``, ``@inherits``) are seen."""
        key = (cls, len(cls.__dict__))
        cached = _PARAMS_CACHE.get(key)
        if cached is None:
            cached = _PARAMS_CACHE[key] = super().get_params()
        return list(cached)

    @classmethod
    def get_param_values(
        cls, params: list[tuple[str, luigi.Parameter]], args: Any, kwargs: dict[str, Any]
    ) -> list[tuple[str, Any]]:
        """luigi's parameter values, without its configuration look-ups when it has no configuration for this
        family (:mod:`b2box.api.parameter_values`)."""
        return parameter_values(
            cls.get_task_family(), params, args, kwargs, lambda: super(Task, cls).get_param_values(params, args, kwargs)
        )

    # -- outputs ------------------------------------------------------------------------------------

    def add_to_output(
        self,
        output_file_name: str,
        target_class: type[luigi.target.FileSystemTarget] | None = None,
        result_dir: str | None = None,
        **kwargs: Any,
    ) -> dict[str, luigi.target.FileSystemTarget]:
        """``{name: target}`` for ``<result_dir>/<params>/<name>``; use with ``yield`` in ``output()``."""
        return {output_file_name: self._get_output_file_target(output_file_name, target_class, result_dir, **kwargs)}

    def get_output_file_name(self, key: str) -> str:
        """The path of the output named ``key`` (a temporary one while ``run()`` executes)."""
        staging = active_staging(self)
        if staging is None:
            return str(self._get_output_target(key).path)
        target = staging.output(key)
        return staging.path_for(key, target.path, upload=target if hasattr(target, "commit_upload") else None)

    def get_all_output_file_names(self) -> Iterator[str]:
        """Every output path of this task."""
        for paths in flatten_to_file_paths(self.output()).values():
            yield from paths

    # -- inputs -------------------------------------------------------------------------------------

    def get_input_file_names(self, key: str | None = None) -> dict[str, list[str]] | list[str]:
        """``{name: [paths]}`` of everything required, or the list for one ``key`` (under ``on_temporary_files``
        remote inputs as local copies)."""
        copies = input_copies(self)
        paths = flatten_to_file_paths(self.input(), copies.path) if copies else flatten_to_file_paths(self.input())
        return paths[key] if key is not None else paths

    def get_input_file_name(self, key: str | None = None) -> str:
        """The one input path for ``key``; a ValueError when there are several."""
        found = self.get_input_file_names(key)
        if isinstance(found, list) and len(found) == 1:
            return found[0]
        if isinstance(found, dict) and len(found) == 1:
            only = next(iter(found.values()))
            if len(only) == 1:
                return only[0]
        raise ValueError(
            f"Found more than 1 input file for the key '{key}'. "
            "If this is expected use self.get_input_file_names instead."
        )

    def get_input_file_names_from_dict(
        self, requirement_key: str, key: str | None = None
    ) -> dict[str, list[str]] | list[str]:
        """Like ``get_input_file_names`` for one entry of a ``requires()`` that returns a dict."""
        paths = flatten_to_file_paths(self.input()[requirement_key])
        return paths[key] if key is not None else paths

    def get_all_input_file_names(self) -> Iterator[str]:
        """Every input path of this task."""
        for paths in flatten_to_file_paths(self.input()).values():
            yield from paths

    # -- targets ------------------------------------------------------------------------------------

    def _get_input_targets(self, key: str) -> list[luigi.Target]:
        return flatten_to_dict_of_lists(self.input())[key]

    def _get_output_target(self, key: str) -> Any:
        return flatten_to_dict(self.output())[key]

    def _get_output_file_target(
        self,
        base_filename: str,
        target_class: type[luigi.target.FileSystemTarget] | None = None,
        result_dir: str | None = None,
        **kwargs: Any,
    ) -> Any:
        file_name = layout.create_output_file_name(self, base_filename, result_dir=result_dir)
        target = self._resolve_output_file_target(file_name, target_class=target_class, **kwargs)
        if hasattr(target, "listing_root"):  # a remote output: its completeness check lists the result folder once
            target.listing_root = result_dir or settings_of(self).folders.result_dir
        return target

    def _resolve_output_file_target(
        self, filename: str, target_class: type[luigi.target.FileSystemTarget] | None = None, **kwargs: Any
    ) -> Any:
        targets = settings_of(self).targets
        kwargs.update(targets.class_kwargs)
        if target_class is not None:
            return target_class(filename, **kwargs)
        if targets.default_class is None:
            return LocalTarget(filename, **kwargs)
        return targets.default_class(filename, **kwargs)

    # -- removal ------------------------------------------------------------------------------------

    def _remove_output_file_target(
        self,
        base_filename: str,
        target_class: type[luigi.target.FileSystemTarget] | None = None,
        result_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        target = self._get_output_file_target(base_filename, target_class, result_dir, **kwargs)
        if not hasattr(target, "remove"):
            raise NotImplementedError(f"Cannot remove output {base_filename}: its target has no remove().")
        target.remove()

    def _remove_output(self) -> None:
        for target in flatten_to_dict(self.output()).values():
            if not hasattr(target, "remove"):
                raise NotImplementedError(f"Cannot remove output {target}: its target has no remove().")
            if target.exists():
                target.remove()

    def remove_output(self) -> None:
        """Remove every output of this task (``b2box remove``); override for outputs elsewhere."""
        self._remove_output()

    @staticmethod
    def _remove_directory(directory: str) -> None:
        if os.path.isdir(directory):
            shutil.rmtree(directory, ignore_errors=True)

    def remove_log_files(self) -> None:
        """Remove this task's log folder."""
        self._remove_directory(layout.get_log_file_dir(self))

    def remove_task_files(self) -> None:
        """Remove this task's wrapper and submit files."""
        self._remove_directory(layout.get_task_file_dir(self))

    # -- grouping -----------------------------------------------------------------------------------

    @classmethod
    def grouped_param_names(cls) -> list[str]:
        """Names of the parameters declared with ``grouping=True``."""
        return [name for name, parameter in cls.get_params() if getattr(parameter, "grouping", False)]

    @classmethod
    def has_grouped_params(cls) -> bool:
        """Whether any parameter is declared with ``grouping=True``."""
        return bool(cls.grouped_param_names())


class ExternalTask(Task, luigi.ExternalTask):
    """An output made outside the workflow; with b2luigi's file helpers."""


class WrapperTask(Task, luigi.WrapperTask):
    """A task that only requires others; with b2luigi's file helpers."""


# When luigi's own worker runs a b2box task (``luigi.build`` or a central ``luigid``), its events
# give the same guarantees as b2box's scheduler: output folders exist and outputs are staged.


@Task.event_handler(luigi.Event.START)
def _stage_outputs_under_luigi(task: Task) -> None:
    if active_staging(task) is None:
        create_output_dirs(task)
        OutputStaging(task, opened_by_event=True).__enter__()


@Task.event_handler(luigi.Event.SUCCESS)
def _commit_outputs_under_luigi(task: Task) -> None:
    staging = active_staging(task)
    if staging is not None and staging.opened_by_event:
        staging.__exit__(None, None, None)


@Task.event_handler(luigi.Event.FAILURE)
def _discard_outputs_under_luigi(task: Task, exception: BaseException) -> None:
    staging = active_staging(task)
    if staging is not None and staging.opened_by_event:
        staging.__exit__(type(exception), exception, None)
